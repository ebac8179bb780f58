//! AWS IoT topic-rule SQL (version 2016-03-23), the part the template uses:
//! `SELECT <items> FROM '<topic filter>' [WHERE <condition>]`, where items are
//! `*`, expressions with `AS` names, `topic(n)` and `timestamp()`, and the
//! condition compares fields and arithmetic with `AND`, `OR`, `NOT`.
//!
//! As IoT Core does, a comparison with a missing field or a non-number is
//! not true (the message is simply not selected), and the selected message is
//! the payload's fields followed by the named items, later ones overriding.

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("rule SQL at byte {at}: {problem}")]
pub struct SqlError {
    pub at: usize,
    pub problem: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Number(f64),
    Str(String),
    Bool(bool),
    Field(Vec<String>),
    Topic(Option<usize>),
    Timestamp,
    /// `isUndefined(field)`: true when the incoming message lacks the field.
    IsUndefined(Vec<String>),
    Unary(char, Box<Expr>),
    Binary(Box<Expr>, Op, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

#[derive(Debug, Clone, PartialEq)]
enum Item {
    All,
    Named(Expr, String),
}

/// A parsed topic rule.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicRule {
    items: Vec<Item>,
    /// The FROM topic filter (`+` and `#` wildcards).
    pub topic_filter: String,
    condition: Option<Expr>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Number(f64),
    Str(String),
    Symbol(&'static str),
}

fn tokenize(sql: &str) -> Result<Vec<(usize, Token)>, SqlError> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i] as char;
        let start = i;
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            out.push((start, Token::Ident(sql[start..i].to_string())));
        } else if c.is_ascii_digit() {
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            let n = sql[start..i].parse().map_err(|_| SqlError {
                at: start,
                problem: format!("bad number {}", &sql[start..i]),
            })?;
            out.push((start, Token::Number(n)));
        } else if c == '\'' {
            let mut text = String::new();
            i += 1;
            loop {
                match bytes.get(i) {
                    None => {
                        return Err(SqlError {
                            at: start,
                            problem: "unterminated string".into(),
                        });
                    }
                    Some(b'\'') if bytes.get(i + 1) == Some(&b'\'') => {
                        text.push('\'');
                        i += 2;
                    }
                    Some(b'\'') => {
                        i += 1;
                        break;
                    }
                    Some(_) => {
                        let ch = sql[i..].chars().next().unwrap_or('\0');
                        text.push(ch);
                        i += ch.len_utf8();
                    }
                }
            }
            out.push((start, Token::Str(text)));
        } else {
            let two = sql.get(i..i + 2).unwrap_or("");
            let symbol = ["<=", ">=", "<>", "!="]
                .into_iter()
                .find(|s| *s == two)
                .or_else(|| {
                    ["(", ")", ",", "*", "+", "-", "/", "%", "<", ">", "=", "."]
                        .into_iter()
                        .find(|s| s.as_bytes()[0] == bytes[i])
                })
                .ok_or_else(|| SqlError {
                    at: start,
                    problem: format!("unexpected {c:?}"),
                })?;
            i += symbol.len();
            out.push((start, Token::Symbol(symbol)));
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    pos: usize,
    end: usize,
}

impl Parser {
    fn at(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.end, |(at, _)| *at)
    }

    fn error<T>(&self, problem: impl Into<String>) -> Result<T, SqlError> {
        Err(SqlError {
            at: self.at(),
            problem: problem.into(),
        })
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(_, t)| t)
    }

    fn keyword(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Token::Ident(w)) if w.eq_ignore_ascii_case(word)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn symbol(&mut self, s: &str) -> bool {
        if matches!(self.peek(), Some(Token::Symbol(t)) if *t == s) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_symbol(&mut self, s: &str) -> Result<(), SqlError> {
        if self.symbol(s) {
            Ok(())
        } else {
            self.error(format!("expected {s}"))
        }
    }

    fn or(&mut self) -> Result<Expr, SqlError> {
        let mut left = self.and()?;
        while self.keyword("OR") {
            left = Expr::Binary(Box::new(left), Op::Or, Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, SqlError> {
        let mut left = self.not()?;
        while self.keyword("AND") {
            left = Expr::Binary(Box::new(left), Op::And, Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, SqlError> {
        if self.keyword("NOT") {
            return Ok(Expr::Unary('!', Box::new(self.not()?)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, SqlError> {
        let left = self.sum()?;
        let op = match self.peek() {
            Some(Token::Symbol("=")) => Op::Eq,
            Some(Token::Symbol("<>")) | Some(Token::Symbol("!=")) => Op::Ne,
            Some(Token::Symbol("<")) => Op::Lt,
            Some(Token::Symbol("<=")) => Op::Le,
            Some(Token::Symbol(">")) => Op::Gt,
            Some(Token::Symbol(">=")) => Op::Ge,
            _ => return Ok(left),
        };
        self.pos += 1;
        Ok(Expr::Binary(Box::new(left), op, Box::new(self.sum()?)))
    }

    fn sum(&mut self) -> Result<Expr, SqlError> {
        let mut left = self.product()?;
        loop {
            let op = if self.symbol("+") {
                Op::Add
            } else if self.symbol("-") {
                Op::Sub
            } else {
                return Ok(left);
            };
            left = Expr::Binary(Box::new(left), op, Box::new(self.product()?));
        }
    }

    fn product(&mut self) -> Result<Expr, SqlError> {
        let mut left = self.unary()?;
        loop {
            let op = if self.symbol("*") {
                Op::Mul
            } else if self.symbol("/") {
                Op::Div
            } else if self.symbol("%") {
                Op::Mod
            } else {
                return Ok(left);
            };
            left = Expr::Binary(Box::new(left), op, Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Expr, SqlError> {
        if self.symbol("-") {
            return Ok(Expr::Unary('-', Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, SqlError> {
        let Some(token) = self.peek().cloned() else {
            return self.error("expected an expression");
        };
        self.pos += 1;
        match token {
            Token::Number(n) => Ok(Expr::Number(n)),
            Token::Str(s) => Ok(Expr::Str(s)),
            Token::Symbol("(") => {
                let e = self.or()?;
                self.expect_symbol(")")?;
                Ok(e)
            }
            Token::Ident(name) if name.eq_ignore_ascii_case("true") => Ok(Expr::Bool(true)),
            Token::Ident(name) if name.eq_ignore_ascii_case("false") => Ok(Expr::Bool(false)),
            Token::Ident(name) if name.eq_ignore_ascii_case("isUndefined") && self.symbol("(") => {
                let Expr::Field(path) = self.primary()? else {
                    return self.error("isUndefined() takes a field");
                };
                self.expect_symbol(")")?;
                Ok(Expr::IsUndefined(path))
            }
            Token::Ident(name) if self.symbol("(") => {
                let lower = name.to_ascii_lowercase();
                if lower != "topic" && lower != "timestamp" {
                    self.pos -= 1;
                    return self.error(format!("function {lower}() is not supported locally"));
                }
                let arg = if self.symbol(")") {
                    None
                } else {
                    let Some(Token::Number(n)) = self.peek().cloned() else {
                        return self.error("expected a number argument");
                    };
                    self.pos += 1;
                    self.expect_symbol(")")?;
                    Some(n as usize)
                };
                match (name.to_ascii_lowercase().as_str(), arg) {
                    ("topic", arg) => Ok(Expr::Topic(arg)),
                    ("timestamp", None) => Ok(Expr::Timestamp),
                    (other, _) => self.error(format!("function {other}() is not supported locally")),
                }
            }
            Token::Ident(name) => {
                let mut path = vec![name];
                while self.symbol(".") {
                    match self.peek().cloned() {
                        Some(Token::Ident(part)) => {
                            self.pos += 1;
                            path.push(part);
                        }
                        _ => return self.error("expected a field name after '.'"),
                    }
                }
                Ok(Expr::Field(path))
            }
            Token::Symbol(s) => self.error(format!("unexpected {s}")),
        }
    }
}

impl TopicRule {
    pub fn parse(sql: &str) -> Result<Self, SqlError> {
        let mut p = Parser {
            tokens: tokenize(sql)?,
            pos: 0,
            end: sql.len(),
        };
        if !p.keyword("SELECT") {
            return p.error("expected SELECT");
        }
        let mut items = Vec::new();
        loop {
            if p.symbol("*") {
                items.push(Item::All);
            } else {
                let start = p.pos;
                let e = p.or()?;
                let name = if p.keyword("AS") {
                    match p.peek().cloned() {
                        Some(Token::Ident(n)) => {
                            p.pos += 1;
                            n
                        }
                        _ => return p.error("expected a name after AS"),
                    }
                } else if let Expr::Field(path) = &e {
                    path.last().cloned().unwrap_or_default()
                } else {
                    p.pos = start;
                    return p.error("an expression needs AS <name>");
                };
                items.push(Item::Named(e, name));
            }
            if !p.symbol(",") {
                break;
            }
        }
        if !p.keyword("FROM") {
            return p.error("expected FROM");
        }
        let topic_filter = match p.peek().cloned() {
            Some(Token::Str(s)) => {
                p.pos += 1;
                s
            }
            _ => return p.error("expected a quoted topic filter"),
        };
        let condition = if p.keyword("WHERE") { Some(p.or()?) } else { None };
        if p.pos != p.tokens.len() {
            return p.error("unexpected text after the rule");
        }
        Ok(Self {
            items,
            topic_filter,
            condition,
        })
    }

    /// The message the rule's action receives, or `None` when the topic does
    /// not match, the payload is not a JSON object, or WHERE is not true.
    pub fn apply(&self, topic: &str, payload: &[u8], now_ms: i64) -> Option<Value> {
        if !topic_matches(&self.topic_filter, topic) {
            return None;
        }
        let Ok(Value::Object(message)) = serde_json::from_slice::<Value>(payload) else {
            return None;
        };
        let context = Context {
            message: &message,
            topic,
            now_ms,
        };
        if let Some(condition) = &self.condition
            && context.eval(condition) != Value::Bool(true)
        {
            return None;
        }
        let mut out = Map::new();
        for item in &self.items {
            match item {
                Item::All => out.extend(message.iter().map(|(k, v)| (k.clone(), v.clone()))),
                Item::Named(e, name) => {
                    let v = context.eval(e);
                    if !v.is_null() {
                        out.insert(name.clone(), v);
                    }
                }
            }
        }
        Some(Value::Object(out))
    }
}

/// MQTT topic-filter matching: `+` one level, `#` the rest.
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    let mut levels = topic.split('/');
    for part in filter.split('/') {
        match (part, levels.next()) {
            ("#", _) => return true,
            ("+", Some(_)) => {}
            (p, Some(l)) if p == l => {}
            _ => return false,
        }
    }
    levels.next().is_none()
}

struct Context<'a> {
    message: &'a Map<String, Value>,
    topic: &'a str,
    now_ms: i64,
}

impl Context<'_> {
    fn eval(&self, e: &Expr) -> Value {
        match e {
            Expr::Number(n) => number(*n),
            Expr::Str(s) => Value::String(s.clone()),
            Expr::Bool(b) => Value::Bool(*b),
            Expr::Field(path) => {
                let mut v = self.message.get(&path[0]);
                for part in &path[1..] {
                    v = v.and_then(|v| v.get(part));
                }
                v.cloned().unwrap_or(Value::Null)
            }
            Expr::Topic(None) => Value::String(self.topic.to_string()),
            Expr::Topic(Some(n)) => self
                .topic
                .split('/')
                .nth(n.saturating_sub(1))
                .filter(|_| *n > 0)
                .map_or(Value::Null, |s| Value::String(s.to_string())),
            Expr::Timestamp => Value::from(self.now_ms),
            Expr::IsUndefined(path) => Value::Bool(self.eval(&Expr::Field(path.clone())).is_null()),
            Expr::Unary('!', inner) => match self.eval(inner) {
                Value::Bool(b) => Value::Bool(!b),
                _ => Value::Null,
            },
            Expr::Unary(_, inner) => self.eval(inner).as_f64().map_or(Value::Null, |n| number(-n)),
            Expr::Binary(l, op, r) => self.binary(l, *op, r),
        }
    }

    fn binary(&self, l: &Expr, op: Op, r: &Expr) -> Value {
        let (a, b) = (self.eval(l), self.eval(r));
        match op {
            Op::Or => match (a, b) {
                (Value::Bool(true), _) | (_, Value::Bool(true)) => Value::Bool(true),
                (Value::Bool(false), Value::Bool(false)) => Value::Bool(false),
                _ => Value::Null,
            },
            Op::And => match (a, b) {
                (Value::Bool(false), _) | (_, Value::Bool(false)) => Value::Bool(false),
                (Value::Bool(true), Value::Bool(true)) => Value::Bool(true),
                _ => Value::Null,
            },
            Op::Eq | Op::Ne => {
                if a.is_null() || b.is_null() {
                    return Value::Null;
                }
                let equal = match (a.as_f64(), b.as_f64()) {
                    (Some(x), Some(y)) => x == y,
                    _ => a == b,
                };
                Value::Bool(equal == (op == Op::Eq))
            }
            _ => {
                let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) else {
                    return Value::Null;
                };
                match op {
                    Op::Lt => Value::Bool(x < y),
                    Op::Le => Value::Bool(x <= y),
                    Op::Gt => Value::Bool(x > y),
                    Op::Ge => Value::Bool(x >= y),
                    Op::Add => number(x + y),
                    Op::Sub => number(x - y),
                    Op::Mul => number(x * y),
                    Op::Div if y != 0.0 => number(x / y),
                    Op::Mod if y != 0.0 => number(x % y),
                    _ => Value::Null,
                }
            }
        }
    }
}

fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TELEMETRY: &str = "SELECT *, topic(3) AS topic_vehicle_id, timestamp() AS received_at \
        FROM 'dt/canopy/+/bms' WHERE isUndefined(topic_vehicle_id) AND isUndefined(received_at)";
    const ALERTS: &str = "SELECT *, topic(3) AS topic_vehicle_id, timestamp() AS received_at FROM 'dt/canopy/+/bms' \
        WHERE isUndefined(topic_vehicle_id) AND isUndefined(received_at) \
        AND (cell_temp_max_c > 60 OR soc_pct < 10 OR (cell_voltage_max_v - cell_voltage_min_v) > 0.1 \
        OR peak.cell_temp_max_c > 60 OR peak.soc_pct < 10)";

    fn payload(temp: f64, soc: f64, vmin: f64, vmax: f64) -> Vec<u8> {
        json!({"vehicle_id": "spoofed", "cell_temp_max_c": temp, "soc_pct": soc,
               "cell_voltage_min_v": vmin, "cell_voltage_max_v": vmax})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn the_telemetry_rule_adds_the_topics_vehicle_and_the_receive_time() {
        let rule = TopicRule::parse(TELEMETRY).unwrap();
        let out = rule
            .apply("dt/canopy/veh-01/bms", &payload(30.0, 50.0, 3.9, 3.95), 1234)
            .unwrap();
        assert_eq!(
            out["vehicle_id"], "spoofed",
            "the payload's claim stays, for the function to check"
        );
        assert_eq!(out["topic_vehicle_id"], "veh-01");
        assert_eq!(out["received_at"], 1234);
        // A payload that brings the rule's own fields never gets through.
        let forged = br#"{"vehicle_id": "veh-02", "topic_vehicle_id": "veh-02"}"#;
        assert!(rule.apply("dt/canopy/veh-01/bms", forged, 0).is_none());
        assert!(
            rule.apply("dt/canopy/veh-01/bms", br#"{"received_at": 99}"#, 0)
                .is_none()
        );
        assert_eq!(out["soc_pct"], 50.0);
        assert!(rule.apply("dt/canopy/veh-01/other", b"{}", 0).is_none());
        assert!(rule.apply("dt/canopy/veh-01/bms/x", b"{}", 0).is_none());
        assert!(rule.apply("dt/canopy/veh-01/bms", b"not json", 0).is_none());
    }

    #[test]
    fn the_alert_rule_selects_hot_empty_and_imbalanced_packs_only() {
        let rule = TopicRule::parse(ALERTS).unwrap();
        let topic = "dt/canopy/veh-01/bms";
        assert!(rule.apply(topic, &payload(61.0, 50.0, 3.9, 3.95), 0).is_some());
        assert!(rule.apply(topic, &payload(30.0, 9.5, 3.9, 3.95), 0).is_some());
        assert!(rule.apply(topic, &payload(30.0, 50.0, 3.7, 3.95), 0).is_some());
        assert!(rule.apply(topic, &payload(60.0, 10.0, 3.9, 3.95), 0).is_none());
        // A missing field compares as not true, as in IoT Core.
        assert!(rule.apply(topic, br#"{"soc_pct": 50}"#, 0).is_none());
        assert!(rule.apply(topic, br#"{"cell_temp_max_c": "hot"}"#, 0).is_none());
        // A v2 message by its samples' peak.
        assert!(
            rule.apply(topic, br#"{"v": 2, "peak": {"cell_temp_max_c": 61, "soc_pct": 50}}"#, 0)
                .is_some()
        );
        assert!(
            rule.apply(topic, br#"{"v": 2, "peak": {"cell_temp_max_c": 40, "soc_pct": 5}}"#, 0)
                .is_some()
        );
        assert!(
            rule.apply(topic, br#"{"v": 2, "peak": {"cell_temp_max_c": 40, "soc_pct": 50}}"#, 0)
                .is_none()
        );
    }

    #[test]
    fn expressions_follow_precedence_and_nested_fields() {
        let rule =
            TopicRule::parse("SELECT a.b * 2 + 1 AS x, NOT (a.b >= 3) AS small FROM 'x/#' WHERE a.b <> 4 AND true")
                .unwrap();
        let out = rule.apply("x/y/z", br#"{"a": {"b": 3}}"#, 0).unwrap();
        assert_eq!(out, json!({"x": 7, "small": false}));
        assert!(rule.apply("x/y", br#"{"a": {"b": 4}}"#, 0).is_none());
    }

    #[test]
    fn bad_sql_is_reported_with_its_position() {
        let err = TopicRule::parse("SELECT * FROM dt/canopy").unwrap_err();
        assert_eq!((err.at, err.problem.as_str()), (14, "expected a quoted topic filter"));
        assert!(TopicRule::parse("SELECT * FROM 'a' WHERE x >").is_err());
        assert!(
            TopicRule::parse("SELECT md5(x) AS y FROM 'a'")
                .unwrap_err()
                .problem
                .contains("md5")
        );
        assert!(TopicRule::parse("SELECT * FROM 'a' WHERE x = 'unterminated").is_err());
    }

    #[test]
    fn topic_filters_match_like_mqtt() {
        assert!(topic_matches("dt/canopy/+/bms", "dt/canopy/v/bms"));
        assert!(!topic_matches("dt/canopy/+/bms", "dt/canopy/bms"));
        assert!(topic_matches("dt/#", "dt/canopy/v/bms"));
        assert!(topic_matches("dt/canopy/v/bms", "dt/canopy/v/bms"));
        assert!(!topic_matches("dt/canopy/v", "dt/canopy/v/bms"));
    }
}
