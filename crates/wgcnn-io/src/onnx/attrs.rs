//! Typed access to a node's attributes, checking each attribute's declared type.

use super::NodeError;
use super::proto::{AttributeProto, TensorProto, attribute_type as at};

/// The attributes of one node.
pub(crate) struct Attrs<'a> {
    list: &'a [AttributeProto],
}

impl<'a> Attrs<'a> {
    pub fn new(list: &'a [AttributeProto]) -> Self {
        Attrs { list }
    }

    fn find(&self, name: &str) -> Option<&'a AttributeProto> {
        self.list.iter().find(|a| a.name == name)
    }

    /// Finds `name` and checks it is of type `want` (IR version 1 files leave the type unset,
    /// which is accepted).
    fn typed(
        &self,
        name: &str,
        want: i32,
        what: &str,
    ) -> Result<Option<&'a AttributeProto>, NodeError> {
        match self.find(name) {
            None => Ok(None),
            Some(a) if a.r#type == want || a.r#type == at::UNDEFINED => Ok(Some(a)),
            Some(a) => Err(NodeError::Invalid(format!(
                "attribute {name} must be {what}, found attribute type {}",
                a.r#type
            ))),
        }
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>, NodeError> {
        Ok(self.typed(name, at::INT, "an INT")?.map(|a| a.i))
    }

    pub fn int_or(&self, name: &str, default: i64) -> Result<i64, NodeError> {
        Ok(self.int(name)?.unwrap_or(default))
    }

    pub fn float(&self, name: &str) -> Result<Option<f32>, NodeError> {
        Ok(self.typed(name, at::FLOAT, "a FLOAT")?.map(|a| a.f))
    }

    pub fn float_or(&self, name: &str, default: f32) -> Result<f32, NodeError> {
        Ok(self.float(name)?.unwrap_or(default))
    }

    pub fn ints(&self, name: &str) -> Result<Option<&'a [i64]>, NodeError> {
        Ok(self
            .typed(name, at::INTS, "INTS")?
            .map(|a| a.ints.as_slice()))
    }

    pub fn floats(&self, name: &str) -> Result<Option<&'a [f32]>, NodeError> {
        Ok(self
            .typed(name, at::FLOATS, "FLOATS")?
            .map(|a| a.floats.as_slice()))
    }

    pub fn string(&self, name: &str) -> Result<Option<String>, NodeError> {
        Ok(self
            .typed(name, at::STRING, "a STRING")?
            .map(|a| String::from_utf8_lossy(&a.s).into_owned()))
    }

    pub fn tensor(&self, name: &str) -> Result<Option<&'a TensorProto>, NodeError> {
        match self.typed(name, at::TENSOR, "a TENSOR")? {
            None => Ok(None),
            Some(a) => match &a.t {
                Some(t) => Ok(Some(t)),
                None => Err(NodeError::Invalid(format!(
                    "attribute {name} holds no tensor"
                ))),
            },
        }
    }

    /// Names of all attributes, for messages about unexpected ones.
    pub fn names(&self) -> impl Iterator<Item = &'a str> {
        self.list.iter().map(|a| a.name.as_str())
    }
}

/// Largest kernel, stride, pad or dilation accepted: bigger values only come from corrupt
/// files and would overflow shape arithmetic.
pub(crate) const MAX_WINDOW: i64 = 1 << 20;

/// Converts an attribute's integers to sizes in `lo..=MAX_WINDOW`.
pub(crate) fn to_sizes(name: &str, values: &[i64], lo: i64) -> Result<Vec<usize>, NodeError> {
    values
        .iter()
        .map(|&v| {
            if (lo..=MAX_WINDOW).contains(&v) {
                Ok(v as usize)
            } else {
                Err(NodeError::Invalid(format!(
                    "{name} {values:?}: each value must be in {lo}..={MAX_WINDOW}"
                )))
            }
        })
        .collect()
}

/// Normalizes a possibly negative axis into `0..len` (`-1` is `len - 1`).
pub(crate) fn norm_axis(axis: i64, len: usize) -> Result<usize, NodeError> {
    let n = len as i64;
    let a = if axis < 0 { axis + n } else { axis };
    if (0..n).contains(&a) {
        Ok(a as usize)
    } else {
        Err(NodeError::Invalid(format!(
            "axis {axis} is out of range for rank {len}"
        )))
    }
}
