//! Storage precision of a plan's tensors: [`Precision::F32`] (the default) or
//! [`Precision::F16`] (weights and activations stored as f16, every kernel still computing and
//! accumulating in f32).
//!
//! f16 kernels are not written by hand: [`to_f16`] rewrites a kernel's composed WGSL so that its
//! module-scope `var<storage>` arrays of `f32`/`vec2<f32>`/`vec4<f32>` hold f16, every read
//! of one is widened to f32 (`f32(x[i])`) and every store narrowed (`y[i] = f16(v);`). Integer
//! arrays, uniforms and `var<workgroup>` arrays are left alone, so reductions stay f32. A
//! small scanner (tokens, bracket matching, block scopes) finds the accesses: locals and
//! parameters that share a binding's name (library functions' `v`, `x`) are left alone in their
//! scope. The rewrite refuses, with [`KernelError::F16`] naming the kernel and binding, what it
//! cannot handle safely (a pointer to a binding other than `arrayLength(&x)`, `++`, a compound
//! store indexed by another f16 binding, `array<vec3<f32>>`). It runs at pipeline creation,
//! once per kernel and override set; a CPU-only test rewrites every kernel in [`F16_KERNELS`]
//! and validates the result with naga, so a shader edit that breaks it fails there rather than
//! on a device, and another makes every new kernel be listed as f16 or refused.
//!
//! This is the one place WGSL text is made at run time (the design otherwise specializes with
//! `override` constants): the rewrite is mechanical, and its output for every kernel is
//! validated by that test.
//!
//! [`crate::Context::kernel`] compiles for the precision of the calling thread's [`scope`]
//! (f32 outside one): a plan's lowering opens one, so the kernel wrappers need no precision
//! argument and f32 and f16 pipelines of one kernel live side by side in one context.

use std::cell::Cell;

use crate::{Context, KernelError};

/// How a plan stores tensors on the GPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Precision {
    /// 4 bytes an element; what every kernel was written for.
    #[default]
    F32,
    /// 2 bytes an element (IEEE half, round to nearest even), computed in f32: half the memory
    /// traffic on GPUs, on devices with `shader-f16` only.
    F16,
}

impl Precision {
    /// The name `--precision` takes.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
        }
    }

    /// Bytes of one stored element.
    pub fn bytes(self) -> u64 {
        match self {
            Precision::F32 => 4,
            Precision::F16 => 2,
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [Precision::F32, Precision::F16]
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown precision {s:?}: f32 or f16"))
    }
}

/// The kernels an f16 plan may use: those of the classifier and segmenter ops (convolutions of
/// every variant, depthwise, linear, pooling, element-wise, concat copies, softmax, resize,
/// argmax) and the preprocessing that writes a plan's input. Kernels whose f32 buffers hold
/// integers or bit patterns (detection, masks, meshes, faces) are not here.
pub const F16_KERNELS: &[&str] = &[
    "unary",
    "conv2d",
    "conv2d_sg",
    "conv2d_1x1_sg",
    "conv2d_winograd_input",
    "conv2d_winograd_gemm",
    "conv2d_winograd_output",
    "conv2d_winograd4_input",
    "conv2d_winograd4_output",
    "dwconv2d",
    "dwconv2d_tile",
    "linear",
    "linear_sg",
    "preprocess",
    "pool2d",
    "pool2d_tile",
    "adaptive_avgpool2d",
    "binary",
    "prelu",
    "copy_channels",
    "lrn",
    "softmax",
    "pad",
    "permute",
    "subsample",
    "resize",
    "argmax2d",
    "conv_transpose2d",
];

thread_local! {
    static CURRENT: Cell<Precision> = const { Cell::new(Precision::F32) };
}

/// The precision kernels compiled on this thread get now.
pub fn current() -> Precision {
    CURRENT.with(Cell::get)
}

/// Until dropped, [`crate::Context::kernel`] on this thread compiles for `precision`; the
/// previous precision comes back on drop (scopes nest).
pub fn scope(precision: Precision) -> Scope {
    Scope {
        previous: CURRENT.with(|c| c.replace(precision)),
        _not_send: std::marker::PhantomData,
    }
}

/// See [`scope`]. Not `Send`: it restores the thread it was opened on.
#[must_use = "the precision reverts when the scope is dropped"]
pub struct Scope {
    previous: Precision,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for Scope {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.previous));
    }
}

/// `data` as IEEE half floats (round to nearest even; beyond ±65504 becomes ±inf).
pub fn to_f16_bits(data: &[f32]) -> Vec<half::f16> {
    data.iter().map(|&v| half::f16::from_f32(v)).collect()
}

/// Half floats back to f32 (exact).
pub fn from_f16_bits(data: &[half::f16], out: &mut Vec<f32>) {
    out.extend(data.iter().map(|v| v.to_f32()));
}

/// A storage buffer holding `data` stored at `precision`.
pub fn upload(ctx: &Context, label: &str, data: &[f32], precision: Precision) -> wgpu::Buffer {
    match precision {
        Precision::F32 => ctx.upload(label, data),
        Precision::F16 => ctx.upload_bytes(label, bytemuck::cast_slice(&padded_f16(data))),
    }
}

/// Queues writing `data` at `precision` to the start of `buffer`, which must hold
/// `data.len()` elements rounded up to an even count (4-byte copies).
pub fn write(ctx: &Context, buffer: &wgpu::Buffer, data: &[f32], precision: Precision) {
    match precision {
        Precision::F32 => ctx
            .queue
            .write_buffer(buffer, 0, bytemuck::cast_slice(data)),
        Precision::F16 => {
            ctx.queue
                .write_buffer(buffer, 0, bytemuck::cast_slice(&padded_f16(data)))
        }
    }
}

/// `data` in f16, padded with a zero to whole 4-byte words (wgpu copies 4 bytes at a time).
fn padded_f16(data: &[f32]) -> Vec<half::f16> {
    let mut v = to_f16_bits(data);
    if v.len() % 2 == 1 {
        v.push(half::f16::ZERO);
    }
    v
}

/// Decodes `len` elements stored at `precision` from mapped bytes (viewed as f32 words, as
/// [`crate::map_read_with`] hands them) into `out` (cleared first).
pub fn decode(words: &[f32], len: usize, precision: Precision, out: &mut Vec<f32>) {
    out.clear();
    match precision {
        Precision::F32 => out.extend_from_slice(&words[..len.min(words.len())]),
        Precision::F16 => {
            let halves: &[half::f16] = bytemuck::cast_slice(words);
            from_f16_bits(&halves[..len.min(halves.len())], out);
        }
    }
}

/// Copies the first `len` elements of `buffer`, stored at `precision`, back as f32 (one
/// submission; for checks and debugging).
pub fn read(
    ctx: &Context,
    buffer: &wgpu::Buffer,
    len: usize,
    precision: Precision,
) -> Result<Vec<f32>, KernelError> {
    match precision {
        Precision::F32 => ctx.read(buffer, len),
        Precision::F16 => {
            let words = ctx.read(buffer, len.div_ceil(2))?;
            let mut out = Vec::with_capacity(len);
            decode(&words, len, precision, &mut out);
            Ok(out)
        }
    }
}

/// The `enable` directive an f16 kernel starts with. It is put on the kernel's first line, so
/// naga's and the driver's line numbers still match the file.
const ENABLE_F16: &str = "enable f16; ";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok {
    Ident,
    Number,
    Punct(u8),
}

#[derive(Clone, Copy, Debug)]
struct Token {
    kind: Tok,
    start: usize,
    end: usize,
}

/// WGSL tokens (identifiers, numbers, one-byte punctuation), comments skipped. Operators are
/// left as single bytes (`>>` closes two templates as often as it shifts); adjacency is read
/// from the byte positions.
fn tokens(src: &str) -> Vec<Token> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            // Block comments nest in WGSL.
            let mut depth = 0usize;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80) {
                i += 1;
            }
            out.push(Token {
                kind: Tok::Ident,
                start,
                end: i,
            });
        } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            let start = i;
            while i < b.len() {
                let d = b[i];
                let exp_sign = (d == b'+' || d == b'-')
                    && matches!(b[i - 1], b'e' | b'E' | b'p' | b'P')
                    && !src[start..i].starts_with("0x");
                if d.is_ascii_alphanumeric() || d == b'.' || d == b'_' || exp_sign {
                    i += 1;
                } else {
                    break;
                }
            }
            out.push(Token {
                kind: Tok::Number,
                start,
                end: i,
            });
        } else {
            out.push(Token {
                kind: Tok::Punct(c),
                start: i,
                end: i + 1,
            });
            i += 1;
        }
    }
    out
}

/// The element type of a rewritten binding, or of an access into one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Elem {
    Scalar,
    Vec(u8),
}

impl Elem {
    fn wide(self) -> String {
        match self {
            Elem::Scalar => "f32".into(),
            Elem::Vec(n) => format!("vec{n}<f32>"),
        }
    }
    fn narrow(self) -> String {
        match self {
            Elem::Scalar => "f16".into(),
            Elem::Vec(n) => format!("vec{n}<f16>"),
        }
    }
}

/// One text insertion: `text` goes before the byte at `at`. Insertions at one position are
/// ordered by `rank` (closing ones before opening ones, inner closings first, outer openings
/// first), so wrappers nest.
struct Insert {
    at: usize,
    rank: (u8, i64),
    text: String,
}

struct Rewrite<'a> {
    kernel: &'a str,
    src: &'a str,
    toks: Vec<Token>,
    inserts: Vec<Insert>,
    /// Byte ranges removed from the output.
    deletes: Vec<(usize, usize)>,
}

impl<'a> Rewrite<'a> {
    fn text(&self, t: usize) -> &'a str {
        let tok = self.toks[t];
        &self.src[tok.start..tok.end]
    }

    fn is(&self, t: usize, p: u8) -> bool {
        self.toks.get(t).is_some_and(|k| k.kind == Tok::Punct(p))
    }

    fn is_word(&self, t: usize, w: &str) -> bool {
        self.toks
            .get(t)
            .is_some_and(|k| k.kind == Tok::Ident && self.text(t) == w)
    }

    /// Whether tokens `a` and `a + 1` touch (`+=`, `==`).
    fn adjacent(&self, a: usize) -> bool {
        match (self.toks.get(a), self.toks.get(a + 1)) {
            (Some(x), Some(y)) => x.end == y.start,
            _ => false,
        }
    }

    fn refuse(&self, binding: &str, what: String) -> KernelError {
        KernelError::F16 {
            kernel: self.kernel.to_string(),
            binding: binding.to_string(),
            detail: what,
        }
    }

    /// The token closing the bracket (`[`, `(`, `{`, `<` not counted) opened at `open`.
    fn closing(&self, open: usize) -> Option<usize> {
        let mut depth = 0i32;
        for t in open..self.toks.len() {
            match self.toks[t].kind {
                Tok::Punct(b'[' | b'(' | b'{') => depth += 1,
                Tok::Punct(b']' | b')' | b'}') => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(t);
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// The end of the statement whose value starts at token `from`: the `;` (or the `)` that
    /// closes an enclosing `for (...)`) at bracket depth 0.
    fn statement_end(&self, from: usize) -> Option<usize> {
        let mut depth = 0i32;
        for t in from..self.toks.len() {
            match self.toks[t].kind {
                Tok::Punct(b'[' | b'(' | b'{') => depth += 1,
                Tok::Punct(b']' | b')' | b'}') => {
                    if depth == 0 {
                        return Some(t);
                    }
                    depth -= 1;
                }
                Tok::Punct(b';') if depth == 0 => return Some(t),
                _ => {}
            }
        }
        None
    }

    fn wrap(&mut self, start: usize, end: usize, open: String, close: &str) {
        let span = (end - start) as i64;
        self.inserts.push(Insert {
            at: start,
            rank: (1, -span),
            text: open,
        });
        self.inserts.push(Insert {
            at: end,
            rank: (0, span),
            text: close.to_string(),
        });
    }

    fn finish(mut self) -> String {
        self.inserts.sort_by_key(|i| (i.at, i.rank));
        let mut out =
            String::with_capacity(self.src.len() + ENABLE_F16.len() + 16 * self.inserts.len());
        out.push_str(ENABLE_F16);
        // Cut the source where anything happens: each piece between two cuts is either wholly
        // deleted or copied, and the insertions at a cut follow the piece before it.
        let mut cuts: Vec<usize> = self.inserts.iter().map(|i| i.at).collect();
        cuts.extend(self.deletes.iter().flat_map(|d| [d.0, d.1]));
        cuts.push(self.src.len());
        cuts.sort_unstable();
        cuts.dedup();
        let mut next = self.inserts.iter().peekable();
        let mut at = 0;
        for p in cuts {
            if !self.deletes.iter().any(|&(a, b)| a <= at && p <= b) {
                out.push_str(&self.src[at..p]);
            }
            at = p;
            while let Some(i) = next.next_if(|i| i.at == p) {
                out.push_str(&i.text);
            }
        }
        out
    }
}

/// `(name, first token, last token)` of every function parameter and local declaration whose
/// name is one of `names`: in that token range the name is the local, not the binding. A
/// `let`/`var`/`const` reaches to the end of its block (of the loop body for a `for` header's
/// `var`), a parameter over its function.
fn shadows(rw: &Rewrite<'_>, names: &[&str]) -> Vec<(String, usize, usize)> {
    let n = rw.toks.len();
    // The closing token of the innermost block around each token (n at module scope).
    let mut open: Vec<usize> = Vec::new();
    let block_end: Vec<usize> = (0..n)
        .map(|t| {
            if rw.is(t, b'{') {
                open.push(rw.closing(t).unwrap_or(n));
            }
            let end = open.last().copied().unwrap_or(n);
            if rw.is(t, b'}') {
                open.pop();
            }
            end
        })
        .collect();
    let body_end = |from: usize| {
        (from..n)
            .find(|&k| rw.is(k, b'{'))
            .and_then(|k| rw.closing(k))
            .unwrap_or(n)
    };
    let mut out = Vec::new();
    for (t, &enclosing) in block_end.iter().enumerate() {
        if rw.is_word(t, "fn") && rw.is(t + 2, b'(') {
            let close = rw.closing(t + 2).unwrap_or(n);
            let end = body_end(close);
            for p in t + 3..close {
                // In a parameter list only parameters are followed by `:` (`@builtin(..)`
                // attributes may precede them).
                let param =
                    rw.toks[p].kind == Tok::Ident && rw.is(p + 1, b':') && !rw.is(p - 1, b'@');
                if param && names.contains(&rw.text(p)) {
                    out.push((rw.text(p).to_string(), p, end));
                }
            }
        }
        let declares = ["let", "var", "const"].iter().any(|w| rw.is_word(t, w))
            && rw.toks.get(t + 1).is_some_and(|k| k.kind == Tok::Ident)
            && enclosing < n;
        if declares && names.contains(&rw.text(t + 1)) {
            let in_for = t >= 2 && rw.is(t - 1, b'(') && rw.is_word(t - 2, "for");
            let end = if in_for { body_end(t) } else { enclosing };
            out.push((rw.text(t + 1).to_string(), t + 1, end));
        }
    }
    out
}

/// `src` (a composed kernel, `kernel` its name) with its f32 storage arrays stored as f16; see
/// the module header.
pub fn to_f16(kernel: &str, src: &str) -> Result<String, KernelError> {
    let mut rw = Rewrite {
        kernel,
        src,
        toks: tokens(src),
        inserts: Vec::new(),
        deletes: Vec::new(),
    };
    let n = rw.toks.len();
    // 1. Module-scope `var<storage, ...> NAME: array<T>` with T f32 or vecN<f32>.
    let mut bindings: Vec<(String, Elem, usize)> = Vec::new();
    let mut depth = 0i32;
    let mut t = 0;
    while t < n {
        match rw.toks[t].kind {
            Tok::Punct(b'{') => depth += 1,
            Tok::Punct(b'}') => depth -= 1,
            _ => {}
        }
        if depth == 0 && rw.is_word(t, "var") && rw.is(t + 1, b'<') && rw.is_word(t + 2, "storage")
        {
            let close = (t + 2..n).find(|&k| rw.is(k, b'>')).unwrap_or(n);
            let name = close + 1;
            if name + 4 < n
                && rw.toks[name].kind == Tok::Ident
                && rw.is(name + 1, b':')
                && rw.is_word(name + 2, "array")
                && rw.is(name + 3, b'<')
            {
                let binding = rw.text(name).to_string();
                let ty = name + 4;
                let (elem, f32_tok, after) = if rw.is_word(ty, "f32") {
                    (Some(Elem::Scalar), ty, ty + 1)
                } else if let Some(k) = ["vec2", "vec3", "vec4"]
                    .iter()
                    .position(|v| rw.is_word(ty, v))
                {
                    if rw.is(ty + 1, b'<') && rw.is_word(ty + 2, "f32") && rw.is(ty + 3, b'>') {
                        if k == 1 {
                            return Err(rw.refuse(
                                &binding,
                                "array<vec3<f32>> (its padding differs in f16)".into(),
                            ));
                        }
                        (Some(Elem::Vec(k as u8 + 2)), ty + 2, ty + 4)
                    } else {
                        (None, ty, ty)
                    }
                } else {
                    (None, ty, ty)
                };
                if let Some(elem) = elem {
                    if !rw.is(after, b'>') {
                        return Err(rw.refuse(&binding, "a fixed-size f32 array in storage".into()));
                    }
                    let tok = rw.toks[f32_tok];
                    rw.deletes.push((tok.start, tok.end));
                    rw.inserts.push(Insert {
                        at: tok.start,
                        rank: (1, 0),
                        text: "f16".into(),
                    });
                    bindings.push((binding, elem, name));
                }
            }
        }
        t += 1;
    }
    // 2. Locals and parameters named like a binding hide it in their scope.
    let names: Vec<&str> = bindings.iter().map(|b| b.0.as_str()).collect();
    let shadows = shadows(&rw, &names);
    // 3. Every other use of those names.
    let mut t = 0;
    while t < n {
        // Struct bodies declare members, which may share a binding's name.
        if rw.is_word(t, "struct") {
            let open = (t..n).find(|&k| rw.is(k, b'{')).unwrap_or(n);
            t = rw.closing(open).unwrap_or(n) + 1;
            continue;
        }
        let Some((name, elem, decl)) = (rw.toks[t].kind == Tok::Ident)
            .then(|| bindings.iter().find(|b| b.0 == rw.text(t)).cloned())
            .flatten()
        else {
            t += 1;
            continue;
        };
        let hidden = shadows
            .iter()
            .any(|(n, a, b)| *n == name && (*a..=*b).contains(&t));
        if t == decl || hidden || (t > 0 && rw.is(t - 1, b'.')) {
            t += 1;
            continue;
        }
        if t > 0
            && ["let", "var", "const", "fn", "override", "alias"]
                .iter()
                .any(|w| rw.is_word(t - 1, w))
            || rw.is(t + 1, b':')
        {
            return Err(rw.refuse(
                &name,
                "a declaration the rewrite cannot scope shadows it".into(),
            ));
        }
        // `a && x[i]`: a logical and, not a pointer.
        let and = t >= 2 && rw.is(t - 2, b'&') && rw.adjacent(t - 2);
        if t > 0 && rw.is(t - 1, b'&') && !and {
            if t >= 3 && rw.is(t - 2, b'(') && rw.is_word(t - 3, "arrayLength") {
                t += 1;
                continue;
            }
            return Err(rw.refuse(
                &name,
                "a pointer to it is taken (only arrayLength(&..) is handled)".into(),
            ));
        }
        if !rw.is(t + 1, b'[') {
            return Err(rw.refuse(&name, "used other than as name[index]".into()));
        }
        // The access chain: name[i] then any [j] / .member.
        let mut last = rw
            .closing(t + 1)
            .ok_or_else(|| rw.refuse(&name, "unclosed [".into()))?;
        let mut ty = elem;
        loop {
            if rw.is(last + 1, b'[') {
                last = rw
                    .closing(last + 1)
                    .ok_or_else(|| rw.refuse(&name, "unclosed [".into()))?;
                ty = Elem::Scalar;
            } else if rw.is(last + 1, b'.')
                && rw.toks.get(last + 2).is_some_and(|k| k.kind == Tok::Ident)
            {
                let len = rw.text(last + 2).len();
                ty = if len == 1 {
                    Elem::Scalar
                } else {
                    Elem::Vec(len as u8)
                };
                last += 2;
            } else {
                break;
            }
        }
        let (start, end) = (rw.toks[t].start, rw.toks[last].end);
        let op = last + 1;
        let assigns = rw.is(op, b'=') && !(rw.adjacent(op) && rw.is(op + 1, b'='));
        let compound = rw
            .toks
            .get(op)
            .is_some_and(|k| matches!(k.kind, Tok::Punct(b'+' | b'-' | b'*' | b'/' | b'%')))
            && rw.adjacent(op)
            && rw.is(op + 1, b'=')
            && !(rw.adjacent(op + 1) && rw.is(op + 2, b'='));
        let increments = rw
            .toks
            .get(op)
            .is_some_and(|k| matches!(k.kind, Tok::Punct(b'+' | b'-')))
            && rw.adjacent(op)
            && rw.toks[op + 1].kind == rw.toks[op].kind;
        if increments {
            return Err(rw.refuse(&name, "incremented with ++/--".into()));
        }
        if assigns || compound {
            let value = if assigns { op + 1 } else { op + 2 };
            let stop = rw
                .statement_end(value)
                .ok_or_else(|| rw.refuse(&name, "a store without an end".into()))?;
            let (from, to) = (rw.toks[value].start, rw.toks[stop].start);
            if assigns {
                rw.wrap(from, to, format!("{}(", ty.narrow()), ")");
            } else {
                let access = &src[start..end];
                if bindings.iter().any(|b| {
                    tokens(access)
                        .iter()
                        .skip(1)
                        .any(|k| k.kind == Tok::Ident && access[k.start..k.end] == b.0)
                }) {
                    return Err(rw.refuse(
                        &name,
                        "a compound store indexed by another f16 binding".into(),
                    ));
                }
                let sym = char::from(src.as_bytes()[rw.toks[op].start]);
                let (a, b) = (rw.toks[op].start, from);
                rw.deletes.push((a, b));
                let open = format!("= {}({}({access}) {sym} (", ty.narrow(), ty.wide());
                // The opening spans the whole value, so reads inside it nest within.
                rw.wrap(a, to, open, "))");
            }
        } else {
            rw.wrap(start, end, format!("{}(", ty.wide()), ")");
        }
        // Indices may read other bindings: carry on inside them.
        t += 1;
    }
    Ok(rw.finish())
}

#[cfg(test)]
#[path = "precision_tests.rs"]
mod tests;
