//! A small pickle machine for what `torch.save` writes (protocols 2–4, plus the text opcodes of
//! protocol 0 that are cheap to support). It builds objects, never runs code: `GLOBAL` yields a
//! name, and `REDUCE`/`NEWOBJ` of a name are interpreted for the few callables a checkpoint
//! needs (`collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`, `_rebuild_parameter`,
//! `_codecs.encode`); any other call becomes an inert [`Node::Object`]. Persistent ids (torch's
//! storages) are handed back unparsed as [`Node::Persistent`] for the caller to resolve.
//!
//! Values live in an arena ([`Pickle::nodes`]) and refer to each other by index: shared and even
//! cyclic references (which pickle's memo allows) cost nothing, and dropping never recurses.

use std::collections::HashMap;

/// Index of a node in [`Pickle::nodes`].
pub(crate) type Id = usize;

/// One unpickled value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Node {
    None,
    Bool(bool),
    Int(i64),
    /// An integer too large for i64: little-endian two's complement bytes.
    BigInt(Vec<u8>),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Id>),
    List(Vec<Id>),
    /// Insertion-ordered key/value pairs (dicts and `OrderedDict`s).
    Dict(Vec<(Id, Id)>),
    /// `module.name` from `GLOBAL`/`STACK_GLOBAL`.
    Global {
        module: String,
        name: String,
    },
    /// The result of a call the machine does not interpret, with its `BUILD` state.
    Object {
        callable: Id,
        args: Id,
        state: Option<Id>,
    },
    /// A persistent id (`BINPERSID`), left for the caller.
    Persistent(Id),
    /// A call of `torch._utils._rebuild_tensor_v2` (or `_rebuild_tensor`): its argument tuple.
    Tensor(Id),
}

/// The result of running one pickle: its node arena and root.
#[derive(Debug)]
pub(crate) struct Pickle {
    pub nodes: Vec<Node>,
    pub root: Id,
    /// Offset just past the `STOP` opcode.
    pub end: usize,
}

impl Pickle {
    pub fn node(&self, id: Id) -> &Node {
        // Ids come from the machine itself, so they are always in range; `None` keeps it total.
        self.nodes.get(id).unwrap_or(&Node::None)
    }

    /// The string at `id`, if it is one.
    pub fn str(&self, id: Id) -> Option<&str> {
        match self.node(id) {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer at `id`, if it is one (booleans count as 0/1, as in Python).
    pub fn int(&self, id: Id) -> Option<i64> {
        match self.node(id) {
            Node::Int(v) => Some(*v),
            Node::Bool(b) => Some(*b as i64),
            _ => None,
        }
    }

    /// The items of the tuple or list at `id`.
    pub fn items(&self, id: Id) -> Option<&[Id]> {
        match self.node(id) {
            Node::Tuple(items) | Node::List(items) => Some(items),
            _ => None,
        }
    }

    /// `module.name` of the global at `id`.
    pub fn global(&self, id: Id) -> Option<(&str, &str)> {
        match self.node(id) {
            Node::Global { module, name } => Some((module, name)),
            _ => None,
        }
    }

    /// A short description of the node's type, for error messages.
    pub fn describe(&self, id: Id) -> String {
        match self.node(id) {
            Node::None => "None".into(),
            Node::Bool(_) => "bool".into(),
            Node::Int(_) | Node::BigInt(_) => "int".into(),
            Node::Float(_) => "float".into(),
            Node::Str(_) => "str".into(),
            Node::Bytes(_) => "bytes".into(),
            Node::Tuple(_) => "tuple".into(),
            Node::List(_) => "list".into(),
            Node::Dict(_) => "dict".into(),
            Node::Global { module, name } => format!("{module}.{name}"),
            Node::Object { callable, .. } => match self.global(*callable) {
                Some((m, n)) => format!("object of {m}.{n}"),
                None => "object".into(),
            },
            Node::Persistent(_) => "persistent id".into(),
            Node::Tensor(_) => "tensor".into(),
        }
    }
}

/// Cap on arena nodes per byte of input: every opcode makes at most one node, so a valid pickle
/// never exceeds its length; this bounds memory on adversarial input.
const MAX_NODES_PER_BYTE: usize = 1;

/// Runs the pickle that starts at `data[start..]` until its `STOP`.
pub(crate) fn unpickle(data: &[u8], start: usize) -> Result<Pickle, String> {
    Machine::new(data, start).run()
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    nodes: Vec<Node>,
    stack: Vec<Id>,
    /// Saved stacks at each `MARK`.
    marks: Vec<Vec<Id>>,
    memo: HashMap<u64, Id>,
}

impl<'a> Machine<'a> {
    fn new(data: &'a [u8], start: usize) -> Self {
        Machine {
            data,
            pos: start,
            nodes: Vec::new(),
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let Some(end) = end else {
            return Err(format!(
                "unexpected end of data: {n} bytes needed at offset {}",
                self.pos
            ));
        };
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
    }

    /// A length read from the file, converted to usize (bounds are checked by `take`).
    fn len(&mut self, width: u8) -> Result<usize, String> {
        let v = match width {
            1 => self.u8()? as u64,
            4 => self.u32()? as u64,
            _ => self.u64()?,
        };
        usize::try_from(v).map_err(|_| format!("length {v} too large"))
    }

    /// A newline-terminated line (text opcodes), without the newline.
    fn line(&mut self) -> Result<&'a str, String> {
        let rest = &self.data[self.pos.min(self.data.len())..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("unterminated text line")?;
        let line = self.take(n + 1)?;
        std::str::from_utf8(&line[..n]).map_err(|_| "text line is not UTF-8".to_string())
    }

    fn push_node(&mut self, node: Node) -> Result<Id, String> {
        if self.nodes.len() >= self.data.len().saturating_mul(MAX_NODES_PER_BYTE).max(16) {
            return Err("too many objects for the pickle's size".into());
        }
        self.nodes.push(node);
        Ok(self.nodes.len() - 1)
    }

    fn push(&mut self, node: Node) -> Result<(), String> {
        let id = self.push_node(node)?;
        self.stack.push(id);
        Ok(())
    }

    fn pop(&mut self) -> Result<Id, String> {
        self.stack
            .pop()
            .ok_or_else(|| "stack underflow".to_string())
    }

    fn top(&self) -> Result<Id, String> {
        self.stack
            .last()
            .copied()
            .ok_or_else(|| "stack underflow".to_string())
    }

    /// The items pushed since the last `MARK`, restoring the stack below it.
    fn pop_mark(&mut self) -> Result<Vec<Id>, String> {
        let saved = self.marks.pop().ok_or("no MARK on the stack")?;
        Ok(std::mem::replace(&mut self.stack, saved))
    }

    fn memo_get(&mut self, index: u64) -> Result<(), String> {
        let id = *self
            .memo
            .get(&index)
            .ok_or_else(|| format!("memo entry {index} is not set"))?;
        self.stack.push(id);
        Ok(())
    }

    fn memo_put(&mut self, index: u64) -> Result<(), String> {
        let id = self.top()?;
        self.memo.insert(index, id);
        Ok(())
    }

    fn int_text(&mut self) -> Result<i64, String> {
        let line = self.line()?;
        let digits = line.trim_end_matches('L');
        match digits {
            "00" => Ok(0),
            "01" => Ok(1),
            _ => digits
                .parse::<i64>()
                .map_err(|_| format!("bad integer literal {line:?}")),
        }
    }

    fn run(mut self) -> Result<Pickle, String> {
        loop {
            let at = self.pos;
            let op = self.u8()?;
            self.step(op)
                .map_err(|e| format!("pickle opcode {op:#04x} at offset {at}: {e}"))?;
            if op == b'.' {
                let root = self
                    .pop()
                    .map_err(|_| "STOP with an empty stack".to_string())?;
                return Ok(Pickle {
                    nodes: self.nodes,
                    root,
                    end: self.pos,
                });
            }
        }
    }

    fn step(&mut self, op: u8) -> Result<(), String> {
        match op {
            0x80 => {
                let proto = self.u8()?;
                if proto > 5 {
                    return Err(format!("unsupported pickle protocol {proto}"));
                }
            }
            0x95 => {
                self.u64()?; // FRAME: a size hint
            }
            b'.' => {}
            b'(' => self.marks.push(std::mem::take(&mut self.stack)),
            b'0' => {
                self.pop()?;
            }
            b'1' => {
                self.pop_mark()?;
            }
            b'2' => {
                let id = self.top()?;
                self.stack.push(id);
            }
            b'N' => self.push(Node::None)?,
            0x88 => self.push(Node::Bool(true))?,
            0x89 => self.push(Node::Bool(false))?,
            b'K' => {
                let v = self.u8()?;
                self.push(Node::Int(v as i64))?
            }
            b'M' => {
                let v = self.u16()?;
                self.push(Node::Int(v as i64))?
            }
            b'J' => {
                let v = self.u32()? as i32;
                self.push(Node::Int(v as i64))?
            }
            0x8a | 0x8b => {
                let n = if op == 0x8a {
                    self.len(1)?
                } else {
                    self.u32()? as i32 as i64 as usize
                };
                let bytes = self.take(n)?;
                self.push(long_from_bytes(bytes))?
            }
            b'I' | b'L' => {
                let v = self.int_text()?;
                self.push(Node::Int(v))?
            }
            b'G' => {
                let b = self.take(8)?;
                let v = f64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
                self.push(Node::Float(v))?
            }
            b'X' | 0x8c | 0x8d => {
                let n = self.len(match op {
                    b'X' => 4,
                    0x8c => 1,
                    _ => 8,
                })?;
                let bytes = self.take(n)?;
                let s =
                    std::str::from_utf8(bytes).map_err(|_| "string is not UTF-8".to_string())?;
                self.push(Node::Str(s.to_string()))?
            }
            b'T' | b'U' => {
                // Python 2 `str`: 8-bit text, read as Latin-1.
                let n = self.len(if op == b'T' { 4 } else { 1 })?;
                let bytes = self.take(n)?;
                self.push(Node::Str(bytes.iter().map(|&b| b as char).collect()))?
            }
            b'B' | b'C' | 0x8e | 0x96 => {
                let n = self.len(match op {
                    b'B' => 4,
                    b'C' => 1,
                    _ => 8,
                })?;
                let bytes = self.take(n)?;
                self.push(Node::Bytes(bytes.to_vec()))?
            }
            b')' => self.push(Node::Tuple(Vec::new()))?,
            b']' => self.push(Node::List(Vec::new()))?,
            b'}' => self.push(Node::Dict(Vec::new()))?,
            0x8f => self.push(Node::List(Vec::new()))?, // EMPTY_SET, kept as a list
            b't' => {
                let items = self.pop_mark()?;
                self.push(Node::Tuple(items))?
            }
            b'l' => {
                let items = self.pop_mark()?;
                self.push(Node::List(items))?
            }
            0x91 => {
                let items = self.pop_mark()?; // FROZENSET
                self.push(Node::List(items))?
            }
            b'd' => {
                let items = self.pop_mark()?;
                let pairs = pairs(&items)?;
                self.push(Node::Dict(pairs))?
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                if self.stack.len() < n {
                    return Err("stack underflow".into());
                }
                let items = self.stack.split_off(self.stack.len() - n);
                self.push(Node::Tuple(items))?
            }
            b'a' => {
                let value = self.pop()?;
                self.extend_list(self.top()?, vec![value])?
            }
            b'e' | 0x90 => {
                let items = self.pop_mark()?;
                self.extend_list(self.top()?, items)?
            }
            b's' => {
                let value = self.pop()?;
                let key = self.pop()?;
                self.extend_dict(self.top()?, vec![(key, value)])?
            }
            b'u' => {
                let items = self.pop_mark()?;
                let pairs = pairs(&items)?;
                self.extend_dict(self.top()?, pairs)?
            }
            b'c' => {
                let module = self.line()?.to_string();
                let name = self.line()?.to_string();
                self.push(Node::Global { module, name })?
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                let (Node::Str(module), Node::Str(name)) = (&self.nodes[module], &self.nodes[name])
                else {
                    return Err("STACK_GLOBAL needs two strings".into());
                };
                let node = Node::Global {
                    module: module.clone(),
                    name: name.clone(),
                };
                self.push(node)?
            }
            b'R' | 0x81 => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let node = self.call(callable, args)?;
                self.push(node)?
            }
            0x92 => {
                let _kwargs = self.pop()?;
                let args = self.pop()?;
                let callable = self.pop()?;
                let node = self.call(callable, args)?;
                self.push(node)?
            }
            b'b' => {
                let state = self.pop()?;
                let target = self.top()?;
                if let Node::Object { state: slot, .. } = &mut self.nodes[target] {
                    *slot = Some(state);
                }
                // BUILD on a dict, list or tensor sets Python attributes (a state dict's
                // `_metadata`): nothing a weight reader needs.
            }
            b'Q' => {
                let pid = self.pop()?;
                self.push(Node::Persistent(pid))?
            }
            b'P' => {
                let line = self.line()?.to_string();
                let pid = self.push_node(Node::Str(line))?;
                self.push(Node::Persistent(pid))?
            }
            b'q' => {
                let i = self.u8()? as u64;
                self.memo_put(i)?
            }
            b'r' => {
                let i = self.u32()? as u64;
                self.memo_put(i)?
            }
            b'p' => {
                let i = self.int_text()?;
                self.memo_put(i as u64)?
            }
            0x94 => {
                let i = self.memo.len() as u64;
                self.memo_put(i)?
            }
            b'h' => {
                let i = self.u8()? as u64;
                self.memo_get(i)?
            }
            b'j' => {
                let i = self.u32()? as u64;
                self.memo_get(i)?
            }
            b'g' => {
                let i = self.int_text()?;
                self.memo_get(i as u64)?
            }
            _ => return Err("unsupported or invalid opcode".into()),
        }
        Ok(())
    }

    fn extend_list(&mut self, target: Id, items: Vec<Id>) -> Result<(), String> {
        match &mut self.nodes[target] {
            Node::List(list) => {
                list.extend(items);
                Ok(())
            }
            // `obj.extend(...)` on an object of an unknown class: the values are not needed.
            Node::Object { .. } => Ok(()),
            _ => Err("APPEND to something that is not a list".into()),
        }
    }

    fn extend_dict(&mut self, target: Id, items: Vec<(Id, Id)>) -> Result<(), String> {
        match &mut self.nodes[target] {
            Node::Dict(dict) => {
                dict.extend(items);
                Ok(())
            }
            Node::Object { .. } => Ok(()),
            _ => Err("SETITEM on something that is not a dict".into()),
        }
    }

    /// `callable(*args)` for the callables a checkpoint needs; an inert object otherwise.
    fn call(&mut self, callable: Id, args: Id) -> Result<Node, String> {
        let (module, name) = match &self.nodes[callable] {
            Node::Global { module, name } => (module.as_str(), name.as_str()),
            _ => {
                return Ok(Node::Object {
                    callable,
                    args,
                    state: None,
                });
            }
        };
        let arg_ids: Vec<Id> = match &self.nodes[args] {
            Node::Tuple(items) => items.clone(),
            _ => return Err(format!("arguments of {module}.{name} are not a tuple")),
        };
        match (module, name) {
            ("collections", "OrderedDict") | ("builtins", "dict") | ("__builtin__", "dict") => {
                // OrderedDict() or OrderedDict([(k, v), ...]).
                let mut dict = Vec::new();
                if let Some(&items) = arg_ids.first() {
                    if let Node::List(items) | Node::Tuple(items) = &self.nodes[items] {
                        for &pair in items {
                            match &self.nodes[pair] {
                                Node::Tuple(kv) if kv.len() == 2 => dict.push((kv[0], kv[1])),
                                _ => {
                                    return Err(
                                        "OrderedDict items are not (key, value) pairs".into()
                                    );
                                }
                            }
                        }
                    }
                }
                Ok(Node::Dict(dict))
            }
            ("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor" | "_rebuild_tensor_v3") => {
                Ok(Node::Tensor(args))
            }
            ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state") => {
                match arg_ids.first() {
                    // Parameter(data, requires_grad, hooks): the data is the tensor.
                    Some(&data) => Ok(self.nodes[data].clone()),
                    None => Err("_rebuild_parameter without arguments".into()),
                }
            }
            ("_codecs", "encode") => {
                // Protocol 2 writes `bytes` as _codecs.encode(text, "latin1").
                match arg_ids.first().map(|&i| &self.nodes[i]) {
                    Some(Node::Str(s)) => {
                        Ok(Node::Bytes(s.chars().map(|c| c as u32 as u8).collect()))
                    }
                    _ => Ok(Node::Object {
                        callable,
                        args,
                        state: None,
                    }),
                }
            }
            _ => Ok(Node::Object {
                callable,
                args,
                state: None,
            }),
        }
    }
}

/// Integers of `LONG1`/`LONG4`: little-endian two's complement.
fn long_from_bytes(bytes: &[u8]) -> Node {
    if bytes.len() > 8 {
        return Node::BigInt(bytes.to_vec());
    }
    let negative = bytes.last().is_some_and(|&b| b & 0x80 != 0);
    let mut buf = if negative { [0xffu8; 8] } else { [0u8; 8] };
    buf[..bytes.len()].copy_from_slice(bytes);
    Node::Int(i64::from_le_bytes(buf))
}

fn pairs(items: &[Id]) -> Result<Vec<(Id, Id)>, String> {
    if !items.len().is_multiple_of(2) {
        return Err("odd number of items for a dict".into());
    }
    Ok(items.chunks_exact(2).map(|kv| (kv[0], kv[1])).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pickle_builds_dicts_tuples_memo_and_globals() {
        // {'a': (1, -2, 3.5), 'b': [True, None], 'c': collections.OrderedDict()} with memo reuse.
        let mut p: Vec<u8> = vec![0x80, 2, b'}', b'q', 0, b'('];
        p.extend([0x8c, 1, b'a', b'q', 1, b'K', 1, b'J']);
        p.extend((-2i32).to_le_bytes());
        p.push(b'G');
        p.extend(3.5f64.to_be_bytes());
        p.extend([0x87, 0x8c, 1, b'b', b']', b'(', 0x88, b'N', b'e']);
        p.extend(b"h\x01ccollections\nOrderedDict\n)R");
        p.extend([b'u', b'.']);
        let pk = unpickle(&p, 0).unwrap();
        let Node::Dict(items) = pk.node(pk.root) else {
            panic!("root is {:?}", pk.node(pk.root))
        };
        assert_eq!(items.len(), 3);
        assert_eq!(pk.str(items[0].0), Some("a"));
        let t = pk.items(items[0].1).unwrap();
        assert_eq!(
            (pk.int(t[0]), pk.int(t[1]), pk.node(t[2])),
            (Some(1), Some(-2), &Node::Float(3.5))
        );
        assert_eq!(pk.items(items[1].1).map(<[Id]>::len), Some(2));
        assert_eq!(
            pk.str(items[2].0),
            Some("a"),
            "BINGET 1 reuses the memoized key"
        );
        assert_eq!(pk.node(items[2].1), &Node::Dict(vec![]));
        assert_eq!(pk.end, p.len());
        println!("{} nodes, root {}", pk.nodes.len(), pk.describe(pk.root));
    }

    #[test]
    fn pickle_long_integers_sign_extend() {
        assert_eq!(long_from_bytes(&[0xff]), Node::Int(-1));
        assert_eq!(long_from_bytes(&[0x00, 0x01]), Node::Int(256));
        assert_eq!(long_from_bytes(&[]), Node::Int(0));
        assert!(matches!(long_from_bytes(&[1; 10]), Node::BigInt(_)));
    }

    #[test]
    fn pickle_errors_instead_of_panicking_on_malformed_input() {
        let cases: [&[u8]; 8] = [
            b"",
            b"\x80\x02",
            b"\x80\x02a.",
            b"\x80\x02Nt.",
            b"\x80\x02h\x05.",
            b"\x80\x02X\xff\xff\xff\xff",
            b"\x80\x02(N(Nd.",
            b"\x80\x09N.",
        ];
        for case in cases {
            let err = unpickle(case, 0).unwrap_err();
            println!("{case:?}: {err}");
        }
    }
}
