//! The protocol's tensors, independent of transport: requests normalised to raw little-endian
//! bytes (what the binary extension and gRPC's `raw_input_contents` carry), JSON `data` in and
//! out, and Triton's binary tensor extension framing.

use serde_json::{Map, Value, json};

use crate::ServeError;

/// An input tensor with its contents as raw bytes: row-major little-endian elements, BYTES
/// elements each prefixed by their length as a little-endian u32.
#[derive(Clone, Debug, PartialEq)]
pub struct InTensor {
    pub name: String,
    pub datatype: String,
    pub shape: Vec<i64>,
    pub raw: Vec<u8>,
}

/// An output the client asked for, with Triton's per-output parameters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OutputRequest {
    pub name: String,
    /// Triton's classification extension: the top `k` as `"score:index:label"` strings.
    pub classification: Option<usize>,
    /// Binary tensor extension: send this output as raw bytes after the JSON header.
    pub binary: Option<bool>,
}

/// One inference request, whatever the transport.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InferRequest {
    pub id: String,
    pub inputs: Vec<InTensor>,
    /// Empty: every output of the model.
    pub outputs: Vec<OutputRequest>,
    /// The request-level `binary_data_output` parameter (REST only).
    pub binary_output: bool,
}

/// An output tensor, raw bytes as [`InTensor`].
#[derive(Clone, Debug, PartialEq)]
pub struct OutTensor {
    pub name: String,
    pub datatype: &'static str,
    pub shape: Vec<i64>,
    pub raw: Vec<u8>,
}

impl OutTensor {
    pub fn f32(name: &str, shape: Vec<i64>, data: &[f32]) -> OutTensor {
        OutTensor {
            name: name.into(),
            datatype: "FP32",
            shape,
            raw: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    pub fn i32(name: &str, shape: Vec<i64>, data: &[i32]) -> OutTensor {
        OutTensor {
            name: name.into(),
            datatype: "INT32",
            shape,
            raw: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    pub fn u8(name: &str, shape: Vec<i64>, data: Vec<u8>) -> OutTensor {
        OutTensor {
            name: name.into(),
            datatype: "UINT8",
            shape,
            raw: data,
        }
    }

    pub fn bytes(name: &str, shape: Vec<i64>, items: &[Vec<u8>]) -> OutTensor {
        OutTensor {
            name: name.into(),
            datatype: "BYTES",
            shape,
            raw: encode_bytes(items),
        }
    }

    /// The elements as JSON values (flat, row-major), as the REST `data` field carries them.
    pub fn json_data(&self) -> Value {
        let v: Vec<Value> = match self.datatype {
            "FP32" => chunks4(&self.raw)
                .map(|b| json!(f32::from_le_bytes(b)))
                .collect(),
            "INT32" => chunks4(&self.raw)
                .map(|b| json!(i32::from_le_bytes(b)))
                .collect(),
            "UINT8" => self.raw.iter().map(|&b| json!(b)).collect(),
            _ => split_bytes(&self.raw)
                .unwrap_or_default()
                .into_iter()
                .map(|b| Value::String(String::from_utf8_lossy(b).into_owned()))
                .collect(),
        };
        Value::Array(v)
    }
}

fn chunks4(raw: &[u8]) -> impl Iterator<Item = [u8; 4]> + '_ {
    raw.chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]])
}

/// Bytes per element of a fixed-size datatype; `None` for BYTES and unknown names.
pub fn element_size(datatype: &str) -> Option<usize> {
    Some(match datatype {
        "BOOL" | "UINT8" | "INT8" => 1,
        "UINT16" | "INT16" | "FP16" | "BF16" => 2,
        "UINT32" | "INT32" | "FP32" => 4,
        "UINT64" | "INT64" | "FP64" => 8,
        _ => return None,
    })
}

/// Element count of a shape; errors on negative dimensions or overflow.
pub fn element_count(shape: &[i64]) -> Result<usize, ServeError> {
    shape.iter().try_fold(1usize, |n, &d| {
        usize::try_from(d)
            .ok()
            .and_then(|d| n.checked_mul(d))
            .ok_or_else(|| ServeError::bad(format!("invalid shape {shape:?}")))
    })
}

/// Length-prefixed BYTES elements.
pub fn encode_bytes(items: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(items.iter().map(|i| i.len() + 4).sum());
    for item in items {
        out.extend_from_slice(&(item.len() as u32).to_le_bytes());
        out.extend_from_slice(item);
    }
    out
}

/// Splits length-prefixed BYTES elements; `None` when a prefix runs past the end.
pub fn split_bytes(mut raw: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    while !raw.is_empty() {
        let len = u32::from_le_bytes(raw.get(..4)?.try_into().ok()?) as usize;
        let item = raw.get(4..4 + len)?;
        out.push(item);
        raw = &raw[4 + len..];
    }
    Some(out)
}

impl InTensor {
    /// Checks that the contents fit the datatype and shape (the element count for BYTES).
    pub fn validate(&self) -> Result<(), ServeError> {
        let n = element_count(&self.shape)?;
        match element_size(&self.datatype) {
            Some(size) => {
                if self.raw.len() != n * size {
                    return Err(ServeError::bad(format!(
                        "input '{}': {} bytes of data for a {} tensor of shape {:?} ({} bytes expected)",
                        self.name,
                        self.raw.len(),
                        self.datatype,
                        self.shape,
                        n * size
                    )));
                }
            }
            None if self.datatype == "BYTES" => {
                let items = split_bytes(&self.raw).ok_or_else(|| {
                    ServeError::bad(format!(
                        "input '{}': BYTES data is truncated (an element's length prefix runs past the end)",
                        self.name
                    ))
                })?;
                if items.len() != n {
                    return Err(ServeError::bad(format!(
                        "input '{}': {} BYTES elements for shape {:?}",
                        self.name,
                        items.len(),
                        self.shape
                    )));
                }
            }
            None => {
                return Err(ServeError::bad(format!(
                    "input '{}': unknown datatype {:?}",
                    self.name, self.datatype
                )));
            }
        }
        Ok(())
    }
}

/// Flattens JSON `data` (nested or flat arrays) into raw bytes of `datatype`.
pub fn json_to_raw(name: &str, datatype: &str, data: &Value) -> Result<Vec<u8>, ServeError> {
    let mut leaves = Vec::new();
    flatten(data, &mut leaves);
    let bad = |what: &Value| {
        ServeError::bad(format!(
            "input '{name}': {what} is not a valid {datatype} element"
        ))
    };
    let mut out = Vec::new();
    for v in leaves {
        match datatype {
            "BYTES" => {
                let s = v.as_str().ok_or_else(|| bad(v))?;
                out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            "BOOL" => out.push(v.as_bool().ok_or_else(|| bad(v))? as u8),
            "FP32" => out.extend((v.as_f64().ok_or_else(|| bad(v))? as f32).to_le_bytes()),
            "FP64" => out.extend(v.as_f64().ok_or_else(|| bad(v))?.to_le_bytes()),
            "UINT8" | "UINT16" | "UINT32" | "UINT64" => {
                let x = v.as_u64().ok_or_else(|| bad(v))?;
                let size = element_size(datatype).unwrap_or(8);
                if size < 8 && x >> (size * 8) != 0 {
                    return Err(bad(v));
                }
                out.extend_from_slice(&x.to_le_bytes()[..size]);
            }
            "INT8" | "INT16" | "INT32" | "INT64" => {
                let x = v.as_i64().ok_or_else(|| bad(v))?;
                let size = element_size(datatype).unwrap_or(8);
                let bits = size as u32 * 8;
                if bits < 64 && (x < -(1i64 << (bits - 1)) || x >= 1i64 << (bits - 1)) {
                    return Err(bad(v));
                }
                out.extend_from_slice(&x.to_le_bytes()[..size]);
            }
            _ => {
                return Err(ServeError::bad(format!(
                    "input '{name}': datatype {datatype:?} cannot be given as JSON data"
                )));
            }
        }
    }
    Ok(out)
}

fn flatten<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| flatten(i, out)),
        other => out.push(other),
    }
}

/// Reads a `parameters` object's value as an integer (JSON number or numeric string).
fn param_usize(v: &Value) -> Option<usize> {
    v.as_u64()
        .map(|n| n as usize)
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// Parses a REST infer body: the JSON header (the whole body, or its first
/// `Inference-Header-Content-Length` bytes) followed by the binary tensors in input order.
pub fn parse_rest_request(
    body: &[u8],
    header_len: Option<usize>,
) -> Result<InferRequest, ServeError> {
    let (head, mut binary) = match header_len {
        Some(n) if n > body.len() => {
            return Err(ServeError::bad(format!(
                "Inference-Header-Content-Length {n} is larger than the {}-byte body",
                body.len()
            )));
        }
        Some(n) => body.split_at(n),
        None => (body, &[][..]),
    };
    let json: Value = serde_json::from_slice(head)
        .map_err(|e| ServeError::bad(format!("malformed JSON request: {e}")))?;
    let obj = json
        .as_object()
        .ok_or_else(|| ServeError::bad("the request is not a JSON object"))?;
    let empty = Map::new();
    let params = obj
        .get("parameters")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut req = InferRequest {
        id: obj.get("id").and_then(Value::as_str).unwrap_or("").into(),
        binary_output: params
            .get("binary_data_output")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        ..Default::default()
    };
    let inputs = obj
        .get("inputs")
        .and_then(Value::as_array)
        .ok_or_else(|| ServeError::bad("the request has no \"inputs\" array"))?;
    for input in inputs {
        let name = input.get("name").and_then(Value::as_str).unwrap_or("");
        let datatype = input
            .get("datatype")
            .and_then(Value::as_str)
            .ok_or_else(|| ServeError::bad(format!("input '{name}' has no datatype")))?;
        let shape: Vec<i64> = input
            .get("shape")
            .and_then(Value::as_array)
            .ok_or_else(|| ServeError::bad(format!("input '{name}' has no shape")))?
            .iter()
            .map(|d| {
                d.as_i64()
                    .ok_or_else(|| ServeError::bad(format!("input '{name}': bad shape")))
            })
            .collect::<Result<_, _>>()?;
        let size = input
            .get("parameters")
            .and_then(|p| p.get("binary_data_size"))
            .and_then(param_usize);
        let raw = match (size, input.get("data")) {
            (Some(n), _) => {
                if n > binary.len() {
                    return Err(ServeError::bad(format!(
                        "input '{name}': binary_data_size {n} but only {} bytes of binary data remain (truncated body?)",
                        binary.len()
                    )));
                }
                let (this, rest) = binary.split_at(n);
                binary = rest;
                this.to_vec()
            }
            (None, Some(data)) => json_to_raw(name, datatype, data)?,
            (None, None) => {
                return Err(ServeError::bad(format!(
                    "input '{name}' has neither data nor binary_data_size"
                )));
            }
        };
        req.inputs.push(InTensor {
            name: name.into(),
            datatype: datatype.into(),
            shape,
            raw,
        });
    }
    if !binary.is_empty() {
        return Err(ServeError::bad(format!(
            "{} bytes of binary data past the inputs' binary_data_size",
            binary.len()
        )));
    }
    if let Some(outputs) = obj.get("outputs").and_then(Value::as_array) {
        for o in outputs {
            let p = o.get("parameters");
            req.outputs.push(OutputRequest {
                name: o.get("name").and_then(Value::as_str).unwrap_or("").into(),
                classification: p
                    .and_then(|p| p.get("classification"))
                    .and_then(param_usize),
                binary: p
                    .and_then(|p| p.get("binary_data"))
                    .and_then(Value::as_bool),
            });
        }
    }
    Ok(req)
}

/// Writes a REST infer response: JSON only, or (when any output goes binary) the JSON header
/// followed by the binary outputs; returns the body and the header length for
/// `Inference-Header-Content-Length`.
pub fn rest_response(
    model: &str,
    version: &str,
    id: &str,
    outputs: &[(OutTensor, bool)],
) -> (Vec<u8>, Option<usize>) {
    let mut tail = Vec::new();
    let outs: Vec<Value> = outputs
        .iter()
        .map(|(t, binary)| {
            let mut o = json!({"name": t.name, "datatype": t.datatype, "shape": t.shape});
            if *binary {
                o["parameters"] = json!({"binary_data_size": t.raw.len()});
                tail.extend_from_slice(&t.raw);
            } else {
                o["data"] = t.json_data();
            }
            o
        })
        .collect();
    let mut head = json!({"model_name": model, "model_version": version, "outputs": outs});
    if !id.is_empty() {
        head["id"] = json!(id);
    }
    let mut body = serde_json::to_vec(&head).unwrap_or_default();
    if outputs.iter().any(|(_, b)| *b) {
        let n = body.len();
        body.extend_from_slice(&tail);
        (body, Some(n))
    } else {
        (body, None)
    }
}

/// Standard base64 (with or without padding), for images sent as JSON strings.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_elements_round_trip_through_length_prefixes() {
        let items = vec![b"ab".to_vec(), vec![], b"xyz".to_vec()];
        let raw = encode_bytes(&items);
        assert_eq!(split_bytes(&raw).unwrap(), vec![&b"ab"[..], b"", b"xyz"]);
        assert!(split_bytes(&raw[..raw.len() - 1]).is_none());
    }

    #[test]
    fn nested_and_flat_json_data_give_the_same_bytes() {
        let a = json_to_raw("x", "FP32", &json!([[1.0, 2.0], [3.0, 4.0]])).unwrap();
        let b = json_to_raw("x", "FP32", &json!([1.0, 2.0, 3.0, 4.0])).unwrap();
        assert_eq!(a, b);
        assert!(json_to_raw("x", "UINT8", &json!([256])).is_err());
    }

    #[test]
    fn binary_extension_splits_header_and_tensors() {
        let head = br#"{"inputs":[{"name":"input","datatype":"UINT8","shape":[2],"parameters":{"binary_data_size":2}}]}"#;
        let mut body = head.to_vec();
        body.extend_from_slice(&[7, 9]);
        let req = parse_rest_request(&body, Some(head.len())).unwrap();
        assert_eq!(req.inputs[0].raw, vec![7, 9]);
        assert!(parse_rest_request(&body[..body.len() - 1], Some(head.len())).is_err());
    }

    #[test]
    fn base64_decodes_padded_and_unpadded() {
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("aGVsbG8").unwrap(), b"hello");
    }
}
