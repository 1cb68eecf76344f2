use super::SEATS_PER_ROW;

/// The number of the `index`-th seat (0-based) of a date: rows of ten, rows lettered like
/// spreadsheet columns: `A1`…`A10`, `B1`…, `Z10`, then `AA1`, `AB1`….
pub fn seat_number(index: u32) -> String {
    let mut row = index / SEATS_PER_ROW;
    let mut letters = Vec::new();
    loop {
        letters.push(b'A' + (row % 26) as u8);
        if row < 26 {
            break;
        }
        row = row / 26 - 1;
    }
    letters.reverse();
    format!("{}{}", String::from_utf8_lossy(&letters), index % SEATS_PER_ROW + 1)
}

#[cfg(test)]
mod tests {
    use super::seat_number;

    #[test]
    fn rows_of_ten_lettered_like_columns() {
        assert_eq!(seat_number(0), "A1");
        assert_eq!(seat_number(9), "A10");
        assert_eq!(seat_number(10), "B1");
        assert_eq!(seat_number(259), "Z10");
        assert_eq!(seat_number(260), "AA1");
        assert_eq!(seat_number(270), "AB1");
        assert_eq!(seat_number(26 * 10 + 26 * 26 * 10), "AAA1");
    }
}
