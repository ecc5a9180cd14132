//! Test support: writes PyTorch checkpoints laid out byte for byte as `torch.save` lays them out
//! (a zip with `<folder>/data.pkl` and `<folder>/data/<key>`, or the legacy run of pickles), so
//! tests can build checkpoints in containers no fixture ships (meshrcnn's `Checkpoint` dicts)
//! without Python. Self-contained: the loader's unit tests use it as a module and the CLI's mesh
//! test includes it with `#[path]`.

#![allow(dead_code)] // each including test uses a different part

/// Builds a pickle (protocol 2) the way Python's pickler writes a checkpoint: containers opened
/// empty and filled with `MARK ... SETITEMS`/`APPENDS`, strings as `BINUNICODE`, every tensor a
/// `_rebuild_tensor_v2` call on a persistent storage id, memo slots for shared objects.
pub struct Pickler {
    out: Vec<u8>,
    /// `(key, bytes)` of every storage, in the order the tensors were written.
    storages: Vec<(String, Vec<u8>)>,
    memo: u32,
    /// Legacy persistent ids carry a sixth element (the view, `None`).
    legacy: bool,
}

impl Pickler {
    /// A pickle for the zip format (`legacy == false`) or the legacy one.
    pub fn new(legacy: bool) -> Self {
        Pickler {
            out: vec![0x80, 2],
            storages: Vec::new(),
            memo: 0,
            legacy,
        }
    }

    pub fn str(&mut self, s: &str) -> &mut Self {
        self.out.push(b'X');
        self.out.extend((s.len() as u32).to_le_bytes());
        self.out.extend(s.as_bytes());
        self
    }

    pub fn int(&mut self, v: i32) -> &mut Self {
        self.out.push(b'J');
        self.out.extend(v.to_le_bytes());
        self
    }

    pub fn float(&mut self, v: f64) -> &mut Self {
        self.out.push(b'G');
        self.out.extend(v.to_be_bytes());
        self
    }

    pub fn none(&mut self) -> &mut Self {
        self.out.push(b'N');
        self
    }

    /// `{` then `MARK`: follow with key/value pairs and [`Pickler::set_items`].
    pub fn dict(&mut self) -> &mut Self {
        self.out.extend(b"}(");
        self
    }

    /// `collections.OrderedDict()` then `MARK`, as a `state_dict()` starts.
    pub fn ordered_dict(&mut self) -> &mut Self {
        self.out.extend(b"ccollections\nOrderedDict\n)R(");
        self
    }

    /// `SETITEMS`: closes a [`Pickler::dict`] or [`Pickler::ordered_dict`].
    pub fn set_items(&mut self) -> &mut Self {
        self.out.push(b'u');
        self
    }

    /// `[` then `MARK`: follow with items and [`Pickler::appends`].
    pub fn list(&mut self) -> &mut Self {
        self.out.extend(b"](");
        self
    }

    pub fn appends(&mut self) -> &mut Self {
        self.out.push(b'e');
        self
    }

    /// `LONG_BINPUT`: remembers the object on top of the stack; returns its slot.
    pub fn put(&mut self) -> u32 {
        let slot = self.memo;
        self.memo += 1;
        self.out.push(b'r');
        self.out.extend(slot.to_le_bytes());
        slot
    }

    /// `LONG_BINGET`: the object remembered in `slot` again (Python's shared references).
    pub fn get(&mut self, slot: u32) -> &mut Self {
        self.out.push(b'j');
        self.out.extend(slot.to_le_bytes());
        self
    }

    /// A contiguous f32 tensor on a storage of its own.
    pub fn tensor(&mut self, shape: &[usize], data: &[f32]) -> &mut Self {
        let key = self.storages.len().to_string();
        self.out.extend(b"ctorch._utils\n_rebuild_tensor_v2\n(");
        self.out.push(b'(');
        self.str("storage");
        self.out.extend(b"ctorch\nFloatStorage\n");
        self.str(&key);
        self.str("cpu");
        self.int(data.len() as i32);
        if self.legacy {
            self.none();
        }
        self.out.extend(b"tQ");
        self.int(0);
        self.out.push(b'(');
        for &d in shape {
            self.int(d as i32);
        }
        self.out.push(b't');
        self.out.push(b'(');
        let mut stride = 1;
        let mut strides = vec![0; shape.len()];
        for (s, &d) in strides.iter_mut().zip(shape).rev() {
            *s = stride;
            stride *= d;
        }
        for s in strides {
            self.int(s as i32);
        }
        // requires_grad False, no backward hooks, close the argument tuple, call.
        self.out.extend(b"t\x89ccollections\nOrderedDict\n)RtR");
        let bytes = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.storages.push((key, bytes));
        self
    }

    /// A whole `state_dict()`: an `OrderedDict` of `key → tensor` with the `_metadata`
    /// attribute torch sets with `BUILD`. Returns its memo slot.
    pub fn state_dict<'a>(
        &mut self,
        tensors: impl IntoIterator<Item = (&'a str, &'a [usize], &'a [f32])>,
    ) -> u32 {
        self.ordered_dict();
        for (key, shape, data) in tensors {
            self.str(key).tensor(shape, data);
        }
        self.set_items();
        let slot = self.put();
        self.dict().str("_metadata").ordered_dict();
        self.str("").dict().str("version").int(1).set_items();
        self.set_items().set_items();
        self.out.push(b'b');
        slot
    }

    /// `STOP`; the pickle and the storages.
    pub fn finish(mut self) -> (Vec<u8>, Vec<(String, Vec<u8>)>) {
        self.out.push(b'.');
        (self.out, self.storages)
    }
}

/// A stored (uncompressed) zip of `(name, data)` entries, as torch writes them (minus its
/// 64-byte alignment padding, which readers must not depend on).
pub fn write_zip(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in files {
        let offset = out.len() as u32;
        let crc = crc32(data);
        let header = |sig: u32, central_fields: bool| {
            let mut h = sig.to_le_bytes().to_vec();
            if central_fields {
                h.extend(20u16.to_le_bytes()); // version made by
            }
            h.extend([20, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // version, flags, method, time, date
            h.extend(crc.to_le_bytes());
            h.extend((data.len() as u32).to_le_bytes());
            h.extend((data.len() as u32).to_le_bytes());
            h.extend((name.len() as u16).to_le_bytes());
            h.extend(0u16.to_le_bytes()); // extra
            if central_fields {
                h.extend([0; 8]); // comment len, disk, internal attrs, external attrs (2 of 4)
                h.extend([0; 2]);
                h.extend(offset.to_le_bytes());
            }
            h.extend(name.as_bytes());
            h
        };
        let local = header(0x0403_4b50, false);
        central.extend(header(0x0201_4b50, true));
        out.extend(local);
        out.extend(*data);
    }
    let cd_offset = out.len() as u32;
    out.extend(&central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0; 4]);
    out.extend((files.len() as u16).to_le_bytes());
    out.extend((files.len() as u16).to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend([0; 2]);
    out
}

/// The zip's CRC-32 (IEEE, reflected), which zip readers such as Python's check.
fn crc32(data: &[u8]) -> u32 {
    let mut table = [0u32; 256];
    for (i, t) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 == 1 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        *t = c;
    }
    !data.iter().fold(!0u32, |c, &b| {
        table[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8)
    })
}

/// `torch.save`'s zip format (torch ≥ 1.6): `archive/data.pkl`, `archive/byteorder`,
/// `archive/data/<key>` per storage, `archive/version`.
pub fn torch_zip(pickler: Pickler) -> Vec<u8> {
    assert!(!pickler.legacy, "a legacy pickle in a zip");
    let (pickle, storages) = pickler.finish();
    let names: Vec<String> = storages
        .iter()
        .map(|(k, _)| format!("archive/data/{k}"))
        .collect();
    let mut files: Vec<(&str, &[u8])> = vec![
        ("archive/data.pkl", &pickle),
        ("archive/byteorder", b"little"),
    ];
    files.extend(
        names
            .iter()
            .map(String::as_str)
            .zip(storages.iter().map(|(_, b)| &b[..])),
    );
    files.push(("archive/version", b"3\n"));
    write_zip(&files)
}

/// `torch.save`'s legacy format (torch < 1.6, which meshrcnn's 2020 checkpoints were saved
/// with): the magic number, protocol version 1001 and system info pickles, the object, the list
/// of storage keys, then each storage as a u64 element count and its bytes.
pub fn torch_legacy(pickler: Pickler) -> Vec<u8> {
    assert!(pickler.legacy, "a zip-format pickle in a legacy file");
    let (object, storages) = pickler.finish();
    let mut out = vec![
        0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, b'.',
    ];
    let mut p = Pickler::new(true);
    p.int(1001);
    out.extend(p.finish().0);
    let mut p = Pickler::new(true);
    p.dict().str("protocol_version").int(1001);
    p.str("little_endian").out.push(0x88);
    p.str("type_sizes")
        .dict()
        .str("short")
        .int(2)
        .str("int")
        .int(4);
    p.str("long").int(8).set_items().set_items();
    out.extend(p.finish().0);
    out.extend(object);
    let mut p = Pickler::new(true);
    p.list();
    for (key, _) in &storages {
        p.str(key);
    }
    p.appends();
    out.extend(p.finish().0);
    for (_, bytes) in &storages {
        out.extend(((bytes.len() / 4) as u64).to_le_bytes());
        out.extend(bytes);
    }
    out
}
