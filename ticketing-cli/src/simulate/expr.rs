//! Figures a scenario writes relative to its load or setup: `paid = "min(users, seats)"`,
//! `balance = "users * 100"`, `sold_out = "users >= seats"`, and `{users}` in a description.
//! `--users N` changes the load, so a fixed number there would stop being true; these are
//! evaluated again for every load a scenario runs with (`scenarios/README.md` lists the names).
//!
//! The grammar is small on purpose: numbers, the names of [`Var`], `+ - * /`, parentheses,
//! `min(a, b, …)`, `max(a, b, …)`, and one comparison (`>= <= > < ==`, true is 1) for flags.

use std::fmt;

/// A name an expression may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    /// Virtual users of the load (after `--users`).
    Users,
    /// Every seat of the setup's concerts: dates × seats, summed over the concerts.
    Seats,
    /// Requests per user of a charge/use/wallet journey (`journey.ops_per_user`).
    Ops,
    /// Users per second of `arrival = "rate"`.
    Rate,
}

impl Var {
    const ALL: [(Var, &'static str); 4] = [
        (Var::Users, "users"),
        (Var::Seats, "seats"),
        (Var::Ops, "ops"),
        (Var::Rate, "rate"),
    ];

    fn parse(name: &str) -> Option<Var> {
        Var::ALL.iter().find(|(_, n)| *n == name).map(|(v, _)| *v)
    }

    fn name(self) -> &'static str {
        Var::ALL.iter().find(|(v, _)| *v == self).map_or("?", |(_, n)| n)
    }
}

/// The values of the names for one load.
#[derive(Debug, Clone, Copy)]
pub struct Vars {
    pub users: u64,
    pub seats: u64,
    pub ops: u32,
    /// `None` unless the arrival is a rate.
    pub rate: Option<f64>,
}

impl Vars {
    fn get(&self, var: Var) -> Result<f64, String> {
        Ok(match var {
            Var::Users => self.users as f64,
            Var::Seats => self.seats as f64,
            Var::Ops => f64::from(self.ops),
            Var::Rate => self.rate.ok_or("`rate` is only known with `load.arrival = \"rate\"`")?,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Ge,
    Le,
    Gt,
    Lt,
    Eq,
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Num(f64),
    Var(Var),
    Neg(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    Min(Vec<Expr>),
    Max(Vec<Expr>),
}

impl Expr {
    /// Parses `text`; the message says what is wrong and where.
    pub fn parse(text: &str) -> Result<Expr, String> {
        let whole = || -> Result<Expr, String> {
            let mut p = Parser {
                tokens: lex(text)?,
                at: 0,
            };
            let e = p.comparison()?;
            match p.tokens.get(p.at) {
                None => Ok(e),
                Some(t) => Err(format!("unexpected {t} after a complete expression")),
            }
        };
        whole().map_err(|m| format!("`{text}`: {m}"))
    }

    /// The value for `vars`.
    pub fn eval(&self, vars: &Vars) -> Result<f64, String> {
        Ok(match self {
            Expr::Num(n) => *n,
            Expr::Var(v) => vars.get(*v)?,
            Expr::Neg(e) => -e.eval(vars)?,
            Expr::Bin(op, a, b) => {
                let (a, b) = (a.eval(vars)?, b.eval(vars)?);
                let truth = |t: bool| if t { 1.0 } else { 0.0 };
                match op {
                    BinOp::Add => a + b,
                    BinOp::Sub => a - b,
                    BinOp::Mul => a * b,
                    BinOp::Div if b == 0.0 => return Err("division by zero".into()),
                    BinOp::Div => a / b,
                    BinOp::Ge => truth(a >= b),
                    BinOp::Le => truth(a <= b),
                    BinOp::Gt => truth(a > b),
                    BinOp::Lt => truth(a < b),
                    BinOp::Eq => truth(a == b),
                }
            }
            Expr::Min(args) => args
                .iter()
                .map(|e| e.eval(vars))
                .try_fold(f64::INFINITY, |m, v| v.map(|v| m.min(v)))?,
            Expr::Max(args) => args
                .iter()
                .map(|e| e.eval(vars))
                .try_fold(f64::NEG_INFINITY, |m, v| v.map(|v| m.max(v)))?,
        })
    }

    /// A whole, non-negative count (`expect.paid`, `expect.ok.*`).
    pub fn count(&self, vars: &Vars) -> Result<u64, String> {
        let v = self.eval(vars)?;
        if v < 0.0 || v.fract() != 0.0 || v > 1e15 {
            return Err(format!(
                "is {} at {} users, not a whole count",
                number(v),
                number(vars.users as f64)
            ));
        }
        Ok(v as u64)
    }

    /// An amount in cents, whole cents only (`expect.balances`).
    pub fn cents(&self, vars: &Vars) -> Result<i64, String> {
        let v = self.eval(vars)?;
        let cents = (v * 100.0).round();
        if v < 0.0 || (v * 100.0 - cents).abs() > 1e-6 || cents > 1e15 {
            return Err(format!(
                "is {} at {} users, not an amount of at least 0 with at most two decimals",
                number(v),
                number(vars.users as f64)
            ));
        }
        Ok(cents as i64)
    }

    /// A flag: a comparison, or a number where 0 is false (`expect.sold_out`).
    pub fn flag(&self, vars: &Vars) -> Result<bool, String> {
        Ok(self.eval(vars)? != 0.0)
    }
}

/// Fills every `{expression}` of `text` in for `vars`: `{users}` → `10,000`.
pub fn render(text: &str, vars: &Vars) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("`{{` without its `}}` in `{}`", &rest[open..]))?;
        let value = Expr::parse(&after[..close])?.eval(vars)?;
        out.push_str(&number(value));
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return Err(format!("`}}` without its `{{` in `{rest}`"));
    }
    out.push_str(rest);
    Ok(out)
}

/// A number as a reader expects it: `10,000`, `2.5`.
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        let whole = super::screen::group(v.abs() as u64);
        return if v < 0.0 { format!("-{whole}") } else { whole };
    }
    let text = format!("{v:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

// ----- parsing -----------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Num(f64),
    Name(String),
    Op(&'static str),
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Num(n) => write!(f, "`{n}`"),
            Token::Name(n) => write!(f, "`{n}`"),
            Token::Op(o) => write!(f, "`{o}`"),
        }
    }
}

fn lex(text: &str) -> Result<Vec<Token>, String> {
    // Two-character operators first, so `>=` is not read as `>` then `=`.
    const OPS: [&str; 12] = [">=", "<=", "==", ">", "<", "+", "-", "*", "/", "(", ")", ","];
    let mut tokens = Vec::new();
    let mut rest = text.trim_start();
    while let Some(c) = rest.chars().next() {
        if c.is_ascii_digit() || c == '.' {
            let end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
                .unwrap_or(rest.len());
            let digits = rest[..end].replace('_', "");
            let n = digits
                .parse::<f64>()
                .map_err(|_| format!("`{}` is not a number", &rest[..end]))?;
            tokens.push(Token::Num(n));
            rest = &rest[end..];
        } else if c.is_ascii_alphabetic() {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            tokens.push(Token::Name(rest[..end].to_string()));
            rest = &rest[end..];
        } else if let Some(op) = OPS.iter().find(|op| rest.starts_with(**op)) {
            tokens.push(Token::Op(op));
            rest = &rest[op.len()..];
        } else {
            return Err(format!("unexpected `{c}`"));
        }
        rest = rest.trim_start();
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek_op(&self) -> Option<&'static str> {
        match self.tokens.get(self.at) {
            Some(Token::Op(o)) => Some(o),
            _ => None,
        }
    }

    fn expect_op(&mut self, op: &str) -> Result<(), String> {
        match self.tokens.get(self.at) {
            Some(Token::Op(o)) if *o == op => {
                self.at += 1;
                Ok(())
            }
            Some(t) => Err(format!("expected `{op}`, found {t}")),
            None => Err(format!("expected `{op}` at the end")),
        }
    }

    fn comparison(&mut self) -> Result<Expr, String> {
        let left = self.sum()?;
        let op = match self.peek_op() {
            Some(">=") => BinOp::Ge,
            Some("<=") => BinOp::Le,
            Some(">") => BinOp::Gt,
            Some("<") => BinOp::Lt,
            Some("==") => BinOp::Eq,
            _ => return Ok(left),
        };
        self.at += 1;
        Ok(Expr::Bin(op, Box::new(left), Box::new(self.sum()?)))
    }

    fn sum(&mut self) -> Result<Expr, String> {
        let mut left = self.product()?;
        loop {
            let op = match self.peek_op() {
                Some("+") => BinOp::Add,
                Some("-") => BinOp::Sub,
                _ => return Ok(left),
            };
            self.at += 1;
            left = Expr::Bin(op, Box::new(left), Box::new(self.product()?));
        }
    }

    fn product(&mut self) -> Result<Expr, String> {
        let mut left = self.factor()?;
        loop {
            let op = match self.peek_op() {
                Some("*") => BinOp::Mul,
                Some("/") => BinOp::Div,
                _ => return Ok(left),
            };
            self.at += 1;
            left = Expr::Bin(op, Box::new(left), Box::new(self.factor()?));
        }
    }

    fn factor(&mut self) -> Result<Expr, String> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        match token {
            Some(Token::Num(n)) => Ok(Expr::Num(n)),
            Some(Token::Op("-")) => Ok(Expr::Neg(Box::new(self.factor()?))),
            Some(Token::Op("(")) => {
                let e = self.comparison()?;
                self.expect_op(")")?;
                Ok(e)
            }
            Some(Token::Name(name)) if name == "min" || name == "max" => {
                self.expect_op("(")?;
                let mut args = vec![self.comparison()?];
                while self.peek_op() == Some(",") {
                    self.at += 1;
                    args.push(self.comparison()?);
                }
                self.expect_op(")")?;
                Ok(if name == "min" {
                    Expr::Min(args)
                } else {
                    Expr::Max(args)
                })
            }
            Some(Token::Name(name)) => Var::parse(&name).map(Expr::Var).ok_or_else(|| {
                format!(
                    "unknown name `{name}` (known: {}, min(…), max(…))",
                    Var::ALL.iter().map(|(v, _)| v.name()).collect::<Vec<_>>().join(", ")
                )
            }),
            Some(t) => Err(format!("unexpected {t}")),
            None => Err("the expression ends too early".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VARS: Vars = Vars {
        users: 20_000,
        seats: 100,
        ops: 5,
        rate: None,
    };

    fn eval(text: &str) -> Result<f64, String> {
        Expr::parse(text)?.eval(&VARS)
    }

    #[test]
    fn evaluates_with_precedence_and_functions() {
        assert_eq!(eval("min(users, seats)"), Ok(100.0));
        assert_eq!(eval("users - 1"), Ok(19_999.0));
        assert_eq!(eval("10000 - min(users, 100) * 100"), Ok(0.0));
        assert_eq!(eval("(users + 1_000) / 3 * 0 + max(1, ops, 2)"), Ok(5.0));
        assert_eq!(eval("-users + 1"), Ok(-19_999.0));
        assert_eq!(eval("users >= seats"), Ok(1.0));
        assert_eq!(eval("users < seats"), Ok(0.0));
    }

    #[test]
    fn says_what_is_wrong() {
        assert_eq!(
            eval("user"),
            Err("`user`: unknown name `user` (known: users, seats, ops, rate, min(…), max(…))".into())
        );
        assert_eq!(eval("users +"), Err("`users +`: the expression ends too early".into()));
        assert_eq!(eval("min(users"), Err("`min(users`: expected `)` at the end".into()));
        assert_eq!(
            eval("users seats"),
            Err("`users seats`: unexpected `seats` after a complete expression".into())
        );
        assert_eq!(eval("users % 2"), Err("`users % 2`: unexpected `%`".into()));
        assert_eq!(
            eval("rate"),
            Err("`rate` is only known with `load.arrival = \"rate\"`".into())
        );
        assert_eq!(
            Expr::parse("users - seats * 1000").unwrap().count(&VARS),
            Err("is -80,000 at 20,000 users, not a whole count".into())
        );
        assert!(Expr::parse("users / 3").unwrap().count(&VARS).is_err());
        assert_eq!(Expr::parse("users * 0.005").unwrap().cents(&VARS), Ok(10_000));
    }

    #[test]
    fn renders_placeholders_as_a_reader_expects() {
        let vars = Vars {
            rate: Some(400.0),
            ..VARS
        };
        assert_eq!(
            render("{users} users, {users / rate} s, {min(users, seats)} payers", &vars).unwrap(),
            "20,000 users, 50 s, 100 payers"
        );
        assert_eq!(render("{users / 8000} s", &vars).unwrap(), "2.5 s");
        assert_eq!(render("no placeholder", &vars).unwrap(), "no placeholder");
        assert!(render("{users", &vars).is_err());
        assert!(render("users}", &vars).is_err());
    }
}
