//! The wire format between the worker and its Durable Objects.
//!
//! Every value is written in field order, with no names: integers as decimal text
//! ended by `;`, strings as their byte length, `:` and the bytes, options and booleans
//! as one letter, sequences as their length then their items, enums as their variant
//! number then its fields. Both sides are this crate, so nothing needs to be
//! self-describing; what matters is that writing and reading are small and fast. (A
//! serde derive costs a few kilobytes of wasm per type and per direction; a [`Wire`]
//! impl is one call per field, written by [`wire_struct!`] and [`wire_enum!`].)
//!
//! Reading never panics: malformed text is a [`WireError`].

use std::fmt;

/// Text that does not hold the value it should.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError(pub &'static str);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed message: {}", self.0)
    }
}

/// A value that travels between the objects.
pub trait Wire: Sized {
    fn put(&self, w: &mut String);
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError>;
}

/// Writes a value as text.
pub fn encode<T: Wire>(value: &T) -> String {
    let mut out = String::new();
    value.put(&mut out);
    out
}

/// Reads a value from text that must hold exactly it.
pub fn decode<T: Wire>(text: &str) -> Result<T, WireError> {
    let mut r = Reader { rest: text };
    let value = T::get(&mut r)?;
    if r.rest.is_empty() {
        Ok(value)
    } else {
        Err(WireError("text after the value"))
    }
}

/// A reader at the start of `text`.
pub fn reader(text: &str) -> Reader<'_> {
    Reader { rest: text }
}

/// Reads values off the front of a text.
pub struct Reader<'a> {
    rest: &'a str,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a str, WireError> {
        let taken = self.rest.get(..n).ok_or(WireError("too short"))?;
        self.rest = &self.rest[n..];
        Ok(taken)
    }

    /// The text up to `end`, which is consumed too.
    fn until(&mut self, end: char) -> Result<&'a str, WireError> {
        let at = self.rest.find(end).ok_or(WireError("missing separator"))?;
        let text = &self.rest[..at];
        self.rest = &self.rest[at + end.len_utf8()..];
        Ok(text)
    }

    fn int(&mut self) -> Result<i64, WireError> {
        self.until(';')?
            .parse()
            .map_err(|_| WireError("bad number"))
    }

    fn letter(&mut self) -> Result<&'a str, WireError> {
        self.take(1)
    }

    /// Whether everything was read.
    pub fn is_done(&self) -> bool {
        self.rest.is_empty()
    }
}

fn put_int(w: &mut String, n: i64) {
    crate::json::push_int(w, n);
    w.push(';');
}

impl Wire for i64 {
    fn put(&self, w: &mut String) {
        put_int(w, *self);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        r.int()
    }
}

macro_rules! wire_unsigned {
    ($($t:ty),*) => {$(
        impl Wire for $t {
            fn put(&self, w: &mut String) {
                put_int(w, i64::try_from(*self).unwrap_or(i64::MAX));
            }
            fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
                <$t>::try_from(r.int()?).map_err(|_| WireError("number out of range"))
            }
        }
    )*};
}
wire_unsigned!(u8, u16, u32, u64, usize);

impl Wire for bool {
    fn put(&self, w: &mut String) {
        w.push(if *self { 't' } else { 'f' });
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        match r.letter()? {
            "t" => Ok(true),
            "f" => Ok(false),
            _ => Err(WireError("bad boolean")),
        }
    }
}

impl Wire for String {
    fn put(&self, w: &mut String) {
        crate::json::push_int(w, self.len() as i64);
        w.push(':');
        w.push_str(self);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let len: usize = r.until(':')?.parse().map_err(|_| WireError("bad length"))?;
        Ok(r.take(len)?.to_owned())
    }
}

impl<T: Wire> Wire for Option<T> {
    fn put(&self, w: &mut String) {
        match self {
            None => w.push('n'),
            Some(value) => {
                w.push('s');
                value.put(w);
            }
        }
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        match r.letter()? {
            "n" => Ok(None),
            "s" => T::get(r).map(Some),
            _ => Err(WireError("bad option")),
        }
    }
}

impl<T: Wire> Wire for Vec<T> {
    fn put(&self, w: &mut String) {
        put_int(w, self.len() as i64);
        for item in self {
            item.put(w);
        }
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let n = usize::try_from(r.int()?).map_err(|_| WireError("bad length"))?;
        // The length is the sender's word: the capacity is not trusted beyond a bound.
        let mut items = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            items.push(T::get(r)?);
        }
        Ok(items)
    }
}

impl<A: Wire, B: Wire, C: Wire> Wire for (A, B, C) {
    fn put(&self, w: &mut String) {
        self.0.put(w);
        self.1.put(w);
        self.2.put(w);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok((A::get(r)?, B::get(r)?, C::get(r)?))
    }
}

impl Wire for () {
    fn put(&self, _: &mut String) {}
    fn get(_: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(())
    }
}

/// `impl Wire` for a struct: its fields in the order listed.
#[macro_export]
macro_rules! wire_struct {
    ($name:ident { $($field:ident),* $(,)? }) => {
        impl $crate::wire::Wire for $name {
            fn put(&self, _w: &mut String) {
                $( $crate::wire::Wire::put(&self.$field, _w); )*
            }
            fn get(_r: &mut $crate::wire::Reader<'_>) -> Result<Self, $crate::wire::WireError> {
                Ok($name { $( $field: $crate::wire::Wire::get(_r)?, )* })
            }
        }
    };
}

/// `impl Wire` for an enum whose variants are units, tuples of one value, or structs:
/// each variant is written as its number, then its value or fields.
#[macro_export]
macro_rules! wire_enum {
    ($name:ident { $( $tag:literal => $variant:ident $( ( $inner:ident ) )? $( { $($field:ident),* $(,)? } )? ),* $(,)? }) => {
        impl $crate::wire::Wire for $name {
            fn put(&self, w: &mut String) {
                match self {
                    $(
                        $name::$variant $( ($inner) )? $( { $($field),* } )? => {
                            $crate::wire::Wire::put(&($tag as u64), w);
                            $( $crate::wire::Wire::put($inner, w); )?
                            $( $( $crate::wire::Wire::put($field, w); )* )?
                        }
                    )*
                }
            }
            fn get(r: &mut $crate::wire::Reader<'_>) -> Result<Self, $crate::wire::WireError> {
                let tag: u64 = $crate::wire::Wire::get(r)?;
                match tag {
                    $(
                        $tag => Ok($name::$variant $( ( { let $inner = $crate::wire::Wire::get(r)?; $inner } ) )? $( { $( $field: $crate::wire::Wire::get(r)?, )* } )? ),
                    )*
                    _ => Err($crate::wire::WireError("unknown variant")),
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Point {
        x: i64,
        label: String,
        tags: Vec<String>,
        note: Option<String>,
        on: bool,
    }
    wire_struct!(Point {
        x,
        label,
        tags,
        note,
        on
    });

    #[derive(Debug, PartialEq)]
    enum Shape {
        Empty,
        One(Point),
        Pair { a: u32, b: Option<u64> },
    }
    wire_enum!(Shape { 0 => Empty, 1 => One(p), 2 => Pair { a, b } });

    fn point() -> Point {
        Point {
            x: -5,
            label: "a:b;c\nü".to_owned(),
            tags: vec!["".to_owned(), "x".to_owned()],
            note: None,
            on: true,
        }
    }

    #[test]
    fn values_round_trip() {
        for shape in [
            Shape::Empty,
            Shape::One(point()),
            Shape::Pair {
                a: 7,
                b: Some(u64::MAX / 2),
            },
        ] {
            let text = encode(&shape);
            assert_eq!(decode::<Shape>(&text), Ok(shape), "{text}");
        }
        assert_eq!(encode(&point()), "-5;8:a:b;c\nü2;0:1:xnt");
    }

    #[test]
    fn malformed_text_is_an_error_never_a_panic() {
        for bad in [
            "",
            "x",
            "1;",
            "1;9999999999999999999;n",
            "3;",
            "2;5;s",
            "0;extra",
            "1;-5;99:short",
        ] {
            assert!(decode::<Shape>(bad).is_err(), "{bad:?}");
        }
        // A multi-byte character split by a lying length.
        assert!(decode::<String>("1:ü").is_err());
        assert!(decode::<u8>("300;").is_err());
    }
}
