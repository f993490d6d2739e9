//! Typed query parameters: a struct that derives `Deserialize` (for parsing) and
//! `utoipa::IntoParams` (for the OpenAPI document) is read from the query string by
//! [`Query::params`], so each parameter is declared once. Handlers read them where
//! they used to read single values, after resolving the path, so a missing resource
//! still answers 404 before a bad parameter answers 422.
//!
//! The reading keeps the rules of [`Query`]: a scalar's last value counts, and an
//! empty one counts as absent (so scalars are `Option`s); a list (a `Vec` with
//! `#[serde(default)]`) takes every non-empty value, from repeated keys (`a=x&a=y`,
//! also `a[]=x`) and comma-separated ones (`a=x,y`) alike, as the SDKs send both. Booleans are `true`/`false` (any case) or `1`/`0`. A value that does not parse
//! is a 422 located at `["query", name]`; rules beyond the type (ranges, id shapes) are
//! the handler's, which reports them the same way.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{
    Deserializer,
    de::{self, DeserializeOwned, IntoDeserializer, Visitor, value::SeqDeserializer},
};

use crate::{error::ApiError, extract::Query};

impl Query {
    /// Reads a parameter struct, as the module doc describes.
    ///
    /// # Errors
    /// 422 at `["query", name]` for the first parameter whose value does not parse.
    pub fn params<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        T::deserialize(Fields { query: self, names: &[], next: 0, current: "" })
            .map_err(|err| ApiError::invalid(&["query", err.name.as_str()], err.msg))
    }
}

/// 422 at `["query", name]` unless `rule` accepts the value, when there is one.
///
/// # Errors
/// The rule's reason, located at the parameter.
pub fn checked(
    name: &str,
    value: Option<String>,
    rule: fn(&str) -> Result<(), String>,
) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) => rule(&v).map(|()| Some(v)).map_err(|msg| ApiError::invalid(&["query", name], msg)),
        None => Ok(None),
    }
}

/// 422 at `["query", name]` unless every value passes `rule`.
///
/// # Errors
/// The first refused value's reason, located at the parameter.
pub fn checked_list(name: &str, values: &[String], rule: fn(&str) -> Result<(), String>) -> Result<(), ApiError> {
    values.iter().try_for_each(|v| rule(v).map_err(|msg| ApiError::invalid(&["query", name], msg)))
}

/// For `#[serde(default, deserialize_with = "query::rfc3339")]`: an RFC 3339 timestamp.
///
/// # Errors
/// When the value is not one.
pub fn rfc3339<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let raw: String = serde::Deserialize::deserialize(deserializer)?;
    DateTime::parse_from_rfc3339(&raw)
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|_| de::Error::custom("value is not a valid RFC 3339 date-time"))
}

/// Why a parameter did not parse, and which one.
#[derive(Debug)]
struct ParamError {
    name: String,
    msg: String,
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.msg)
    }
}

impl std::error::Error for ParamError {}

impl de::Error for ParamError {
    fn custom<M: fmt::Display>(msg: M) -> Self {
        Self { name: String::new(), msg: msg.to_string() }
    }
}

/// The struct: its fields that the query gives a non-empty value, in declaration order.
struct Fields<'q> {
    query: &'q Query,
    names: &'static [&'static str],
    next: usize,
    current: &'static str,
}

impl<'de> Deserializer<'de> for Fields<'_> {
    type Error = ParamError;

    fn deserialize_struct<V: Visitor<'de>>(
        mut self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        self.names = fields;
        visitor.visit_map(self)
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, ParamError> {
        Err(de::Error::custom("query parameters are read into a struct"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

impl<'de> de::MapAccess<'de> for Fields<'_> {
    type Error = ParamError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, ParamError> {
        while let Some(&name) = self.names.get(self.next) {
            self.next += 1;
            // Present when a scalar reading (the last value) or a list reading (every
            // value) finds something; an empty last value then reads as `None` below.
            if self.query.get(name).is_some_and(|v| !v.is_empty()) || !self.query.list(name).is_empty() {
                self.current = name;
                return seed.deserialize(name.into_deserializer()).map(Some);
            }
        }
        Ok(None)
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, ParamError> {
        let name = self.current;
        seed.deserialize(Value { query: self.query, name }).map_err(|mut err| {
            if err.name.is_empty() {
                name.clone_into(&mut err.name);
            }
            err
        })
    }
}

/// One parameter's value, read as the type asks: a scalar from the last value, a list
/// from all of them.
struct Value<'q> {
    query: &'q Query,
    name: &'static str,
}

impl Value<'_> {
    fn raw(&self) -> &str {
        self.query.get(self.name).unwrap_or_default()
    }
}

impl<'de> Deserializer<'de> for Value<'_> {
    type Error = ParamError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_string(self.raw().to_owned())
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        // A scalar whose last value is empty is absent, as if never given.
        if self.raw().is_empty() { visitor.visit_none() } else { visitor.visit_some(self) }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        match self.raw() {
            v if v.eq_ignore_ascii_case("true") || v == "1" => visitor.visit_bool(true),
            v if v.eq_ignore_ascii_case("false") || v == "0" => visitor.visit_bool(false),
            _ => Err(de::Error::custom("value could not be parsed to a boolean")),
        }
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        let n = self.raw().parse().map_err(|_| de::Error::custom("value is not a valid integer"))?;
        visitor.visit_u64(n)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_seq(SeqDeserializer::new(self.query.list(self.name).into_iter()))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        visitor.visit_enum(self.raw().to_owned().into_deserializer())
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u32 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct tuple tuple_struct map struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Sample {
        flag: Option<bool>,
        limit: Option<u64>,
        name: Option<String>,
        #[serde(default)]
        tags: Vec<String>,
        #[serde(default, deserialize_with = "rfc3339")]
        when: Option<DateTime<Utc>>,
    }

    fn read(raw: &str) -> Result<Sample, ApiError> {
        Query::parse(raw).params()
    }

    fn loc(err: ApiError) -> serde_json::Value {
        let body: serde_json::Value = serde_json::from_slice(&err.body()).unwrap();
        body["detail"][0]["loc"].clone()
    }

    #[test]
    fn values_parse_as_their_type() {
        let s = read("flag=TRUE&limit=5&limit=7&name=a&tags=x,y&tags[]=z&when=2024-01-02T03:04:05Z&other=1").unwrap();
        assert_eq!(s.flag, Some(true));
        assert_eq!(s.limit, Some(7));
        assert_eq!(s.name.as_deref(), Some("a"));
        assert_eq!(s.tags, ["x", "y", "z"]);
        assert!(s.when.is_some());
    }

    #[test]
    fn empty_and_absent_are_none() {
        let none = Sample { flag: None, limit: None, name: None, tags: Vec::new(), when: None };
        assert_eq!(read("").unwrap(), none);
        assert_eq!(read("flag=&limit=&name=&tags=&tags=,&when=").unwrap(), none);
        // A scalar's last value counts; a list keeps every non-empty one.
        assert_eq!(read("flag=true&flag=&tags=a&tags=").unwrap(), Sample { tags: vec!["a".to_owned()], ..none });
    }

    #[test]
    fn bad_values_are_located() {
        for (raw, name) in
            [("flag=maybe", "flag"), ("limit=-1", "limit"), ("limit=x", "limit"), ("when=yesterday", "when")]
        {
            let err = read(raw).unwrap_err();
            assert_eq!(err.status().as_u16(), 422, "{raw}");
            assert_eq!(loc(err), serde_json::json!(["query", name]), "{raw}");
        }
    }

    proptest! {
        #[test]
        fn reading_never_panics(raw in ".{0,200}") {
            let _ = read(&raw);
        }
    }
}
