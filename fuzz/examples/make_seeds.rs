//! Writes small seed corpora for every fuzz target into `fuzz/corpus/<target>/`, made from the
//! golden fixtures (`../shared/fixtures`, or `$WGCNN_FIXTURES`) and `assets/`. Seeds are kept
//! small (a few KiB) on purpose: libFuzzer mutates small inputs many times faster, and the parsers'
//! interesting paths (headers, directories, pickles, graphs) are all in the first bytes.
//!
//! `cargo run --release --manifest-path fuzz/Cargo.toml --example make_seeds` (from the repository
//! root; it never needs nightly).

use std::fs;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use wgcnn_io::PthFile;
use wgcnn_io::onnx::proto::{
    AttributeProto as A, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    ValueInfoProto, data_type,
};
use zip::write::SimpleFileOptions;

type Seeds = Vec<(String, Vec<u8>)>;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let fixtures = std::env::var_os("WGCNN_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/fixtures"));
    let corpus = root.join("fuzz/corpus");
    let sets: [(&str, Seeds); 5] = [
        ("pth", pth_seeds(&fixtures)),
        ("safetensors", safetensors_seeds(&fixtures)),
        ("onnx", onnx_seeds()),
        ("image", image_seeds(&root.join("assets"))),
        ("bind", bind_seeds()),
    ];
    for (target, seeds) in sets {
        let dir = corpus.join(target);
        fs::create_dir_all(&dir).expect("create corpus folder");
        for (name, bytes) in &seeds {
            fs::write(dir.join(name), bytes).expect("write seed");
        }
        println!("{target}: {} seeds in {}", seeds.len(), dir.display());
    }
}

// ---------------------------------------------------------------------------------------------
// .pth: the first tensors of the fixture's LeNet-5, re-saved as tiny checkpoints in each shape
// torch writes (stored zip, deflated zip, nested dict, f16, legacy).

fn pickle_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'X');
    out.extend((s.len() as u32).to_le_bytes());
    out.extend(s.as_bytes());
}

fn pickle_int(out: &mut Vec<u8>, v: usize) {
    out.push(b'J');
    out.extend((v as i32).to_le_bytes());
}

/// A protocol-2 pickle of `{key: tensor}` (nested under `state_dict` when asked), each tensor a
/// `_rebuild_tensor_v2` of storage `i`; `legacy` adds the view-less 6th persistent-id field.
fn state_dict_pickle(tensors: &[(String, Vec<usize>)], storage: &str, nested: bool) -> Vec<u8> {
    let mut p = vec![0x80, 2];
    if nested {
        p.push(b'}');
        pickle_str(&mut p, "state_dict");
    }
    p.extend(b"ccollections\nOrderedDict\n)R(");
    for (i, (key, shape)) in tensors.iter().enumerate() {
        pickle_str(&mut p, key);
        p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n((");
        pickle_str(&mut p, "storage");
        p.extend(format!("ctorch\n{storage}\n").as_bytes());
        pickle_str(&mut p, &i.to_string());
        pickle_str(&mut p, "cpu");
        pickle_int(&mut p, shape.iter().product());
        p.extend(b"tQ");
        pickle_int(&mut p, 0);
        p.push(b'(');
        for &d in shape {
            pickle_int(&mut p, d);
        }
        p.extend(b"t(");
        let mut stride = 1;
        let mut strides = vec![0; shape.len()];
        for (s, &d) in strides.iter_mut().zip(shape).rev() {
            *s = stride;
            stride *= d;
        }
        for s in strides {
            pickle_int(&mut p, s);
        }
        p.extend(b"t\x89ccollections\nOrderedDict\n)RtR");
    }
    p.push(b'u');
    if nested {
        p.push(b's');
    }
    p.push(b'.');
    p
}

fn zip_checkpoint(pickle: &[u8], storages: &[Vec<u8>], method: zip::CompressionMethod) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(method);
    let mut add = |name: &str, data: &[u8]| {
        zip.start_file(name, opts).expect("zip entry");
        zip.write_all(data).expect("zip data");
    };
    add("archive/data.pkl", pickle);
    add("archive/byteorder", b"little");
    for (i, s) in storages.iter().enumerate() {
        add(&format!("archive/data/{i}"), s);
    }
    add("archive/version", b"3\n");
    zip.finish().expect("zip").into_inner()
}

/// torch's legacy format: magic, protocol 1001, system info, object, storage keys, storages.
fn legacy_checkpoint(tensors: &[(String, Vec<usize>)], storages: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![
        0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, b'.',
    ];
    out.extend([0x80, 0x02, b'M', 0xe9, 0x03, b'.']);
    out.extend([0x80, 0x02, b'}']);
    pickle_str(&mut out, "little_endian");
    out.extend([0x88, b's', b'.']);
    out.extend(state_dict_pickle(tensors, "FloatStorage", false));
    out.extend([0x80, 0x02, b']', b'(']);
    for i in 0..storages.len() {
        pickle_str(&mut out, &i.to_string());
    }
    out.extend([b'e', b'.']);
    for s in storages {
        out.extend(((s.len() / 4) as u64).to_le_bytes());
        out.extend(s);
    }
    out
}

fn pth_seeds(fixtures: &Path) -> Seeds {
    let file = PthFile::open(fixtures.join("pth/lenet5.pth")).expect("fixture lenet5.pth");
    let keys: Vec<String> = file.keys().iter().take(2).cloned().collect();
    let mut tensors = Vec::new();
    let mut f32s = Vec::new();
    let mut f16s = Vec::new();
    for key in &keys {
        let t = file.tensor(key).expect("fixture tensor");
        // At most 24 values: a [1, 1, 2, 3]-ish slice of the real tensor keeps seeds tiny.
        let data: Vec<f32> = t.data.iter().copied().take(24).collect();
        let shape = if t.shape.len() == 1 {
            vec![data.len()]
        } else {
            vec![data.len() / 6, 1, 2, 3]
        };
        let data = &data[..shape.iter().product()];
        f32s.push(data.iter().flat_map(|v| v.to_le_bytes()).collect());
        f16s.push(
            data.iter()
                .flat_map(|v| f16_bits(*v).to_le_bytes())
                .collect(),
        );
        tensors.push((key.clone(), shape));
    }
    let plain = state_dict_pickle(&tensors, "FloatStorage", false);
    let nested = state_dict_pickle(&tensors, "FloatStorage", true);
    let half = state_dict_pickle(&tensors, "HalfStorage", false);
    let stored = zip::CompressionMethod::Stored;
    vec![
        ("stored.pth".into(), zip_checkpoint(&plain, &f32s, stored)),
        ("nested.pth".into(), zip_checkpoint(&nested, &f32s, stored)),
        ("f16.pth".into(), zip_checkpoint(&half, &f16s, stored)),
        (
            "deflated.pth".into(),
            zip_checkpoint(&plain, &f32s, zip::CompressionMethod::Deflated),
        ),
        ("legacy.pth".into(), legacy_checkpoint(&tensors, &f32s)),
    ]
}

fn f16_bits(v: f32) -> u16 {
    // Round toward zero is enough for seeds: only the bit layout matters.
    let b = v.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exp = ((b >> 23) & 0xff) as i32 - 127 + 15;
    if exp <= 0 {
        return sign;
    }
    if exp >= 31 {
        return sign | 0x7c00;
    }
    sign | ((exp as u16) << 10) | ((b >> 13) & 0x3ff) as u16
}

// ---------------------------------------------------------------------------------------------
// safetensors: the fixtures' small io file, and a hand-written one with every dtype.

fn safetensors_seeds(fixtures: &Path) -> Seeds {
    let mut seeds = Vec::new();
    for name in ["onnx/lenet5.io.safetensors"] {
        if let Ok(bytes) = fs::read(fixtures.join(name)) {
            seeds.push(("lenet5.io.safetensors".to_string(), bytes));
        }
    }
    let mut header = String::from("{\"__metadata__\":{\"format\":\"pt\"}");
    let mut data = Vec::new();
    for (key, dtype, size) in [
        ("a", "F32", 4),
        ("b", "F16", 2),
        ("c", "BF16", 2),
        ("d", "I64", 8),
        ("e", "F64", 8),
        ("f", "U8", 1),
        ("g", "BOOL", 1),
    ] {
        let start = data.len();
        data.extend((0..2 * size).map(|i| (i * 37 + 11) as u8));
        header.push_str(&format!(
            ",\"{key}\":{{\"dtype\":\"{dtype}\",\"shape\":[2],\"data_offsets\":[{start},{}]}}",
            data.len()
        ));
    }
    header.push('}');
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header.as_bytes());
    bytes.extend(data);
    seeds.push(("dtypes.safetensors".into(), bytes));
    seeds
}

// ---------------------------------------------------------------------------------------------
// ONNX: small graphs that reach each part of the importer (convs, shape folding, resize...).

fn model(inputs: &[(&str, &[i64])], nodes: Vec<NodeProto>, inits: Vec<TensorProto>) -> Vec<u8> {
    let output = nodes
        .last()
        .and_then(|n| n.output.first().cloned())
        .unwrap_or_default();
    ModelProto {
        ir_version: 8,
        producer_name: "wgcnn-fuzz".into(),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(GraphProto {
            name: "seed".into(),
            node: nodes,
            initializer: inits,
            input: inputs
                .iter()
                .map(|(n, s)| {
                    let dims: Vec<Option<i64>> = s.iter().map(|&d| Some(d)).collect();
                    ValueInfoProto::tensor(n, data_type::FLOAT, &dims)
                })
                .collect(),
            output: vec![ValueInfoProto {
                name: output,
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
    .to_bytes()
}

fn n(op: &str, inputs: &[&str], output: &str, attrs: Vec<A>) -> NodeProto {
    NodeProto::new(op, output, inputs, &[output], attrs)
}

fn onnx_seeds() -> Seeds {
    let w = |name: &str, dims: &[i64]| {
        let count: i64 = dims.iter().product();
        let values: Vec<f32> = (0..count).map(|i| (i % 7) as f32 * 0.1 - 0.3).collect();
        TensorProto::float_raw(name, dims, &values)
    };
    let convnet = model(
        &[("x", &[1, 1, 8, 8])],
        vec![
            n(
                "Conv",
                &["x", "w1", "b1"],
                "c1",
                vec![
                    A::ints("kernel_shape", &[3, 3]),
                    A::ints("pads", &[1, 1, 1, 1]),
                ],
            ),
            n("Relu", &["c1"], "r1", vec![]),
            n(
                "MaxPool",
                &["r1"],
                "p1",
                vec![
                    A::ints("kernel_shape", &[2, 2]),
                    A::ints("strides", &[2, 2]),
                ],
            ),
            n("Flatten", &["p1"], "f", vec![A::int("axis", 1)]),
            n("Gemm", &["f", "w2", "b2"], "g", vec![A::int("transB", 1)]),
            n("Softmax", &["g"], "y", vec![A::int("axis", 1)]),
        ],
        vec![
            w("w1", &[2, 1, 3, 3]),
            w("b1", &[2]),
            w("w2", &[3, 32]),
            w("b2", &[3]),
        ],
    );
    let shapes = model(
        &[("x", &[1, 2, 4, 4])],
        vec![
            n("Shape", &["x"], "s", vec![]),
            n("Gather", &["s", "zero"], "n", vec![A::int("axis", 0)]),
            n("Unsqueeze", &["n", "axes"], "nu", vec![]),
            n(
                "Concat",
                &["nu", "minus1"],
                "target",
                vec![A::int("axis", 0)],
            ),
            n("Reshape", &["x", "target"], "y", vec![]),
        ],
        vec![
            TensorProto::int64s("zero", &[], &[0]),
            TensorProto::int64s("axes", &[1], &[0]),
            TensorProto::int64s("minus1", &[1], &[-1]),
        ],
    );
    let consts = model(
        &[("x", &[1, 2, 3, 3])],
        vec![
            n(
                "ConstantOfShape",
                &["shape"],
                "k",
                vec![A::tensor(
                    "value",
                    TensorProto::float_raw("v", &[1], &[0.5]),
                )],
            ),
            n("Add", &["x", "k"], "a", vec![]),
            n(
                "Resize",
                &["a", "", "scales"],
                "y",
                vec![A::string("mode", "nearest")],
            ),
        ],
        vec![
            TensorProto::int64s("shape", &[4], &[1, 2, 3, 3]),
            TensorProto::float_raw("scales", &[4], &[1.0, 1.0, 2.0, 2.0]),
        ],
    );
    let norm = model(
        &[("x", &[1, 2, 4, 4])],
        vec![
            n(
                "BatchNormalization",
                &["x", "scale", "bias", "mean", "var"],
                "bn",
                vec![A::float("epsilon", 1e-5)],
            ),
            n(
                "Transpose",
                &["bn"],
                "t",
                vec![A::ints("perm", &[0, 1, 3, 2])],
            ),
            n("Concat", &["t", "bn"], "c", vec![A::int("axis", 1)]),
            n("Slice", &["c", "starts", "ends", "sl_axes"], "s", vec![]),
            n("GlobalAveragePool", &["s"], "y", vec![]),
        ],
        vec![
            w("scale", &[2]),
            w("bias", &[2]),
            w("mean", &[2]),
            TensorProto::float_raw("var", &[2], &[1.0, 2.0]),
            TensorProto::int64s("starts", &[1], &[1]),
            TensorProto::int64s("ends", &[1], &[3]),
            TensorProto::int64s("sl_axes", &[1], &[1]),
        ],
    );
    vec![
        ("convnet.onnx".into(), convnet),
        ("shapes.onnx".into(), shapes),
        ("consts.onnx".into(), consts),
        ("norm.onnx".into(), norm),
    ]
}

// ---------------------------------------------------------------------------------------------
// Images: assets/chelsea.png shrunk to 24x16 and written in every format the library reads.

fn image_seeds(assets: &Path) -> Seeds {
    use image::{DynamicImage, ImageFormat, imageops::FilterType};
    let cat = image::open(assets.join("chelsea.png")).expect("assets/chelsea.png");
    let small = cat.resize_exact(24, 16, FilterType::Triangle);
    let mut seeds = Vec::new();
    let mut save = |name: &str, img: &DynamicImage, format: ImageFormat| {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).expect("encode seed image");
        seeds.push((name.to_string(), out.into_inner()));
    };
    let rgb = DynamicImage::ImageRgb8(small.to_rgb8());
    save("rgb8.png", &rgb, ImageFormat::Png);
    save(
        "rgba8.png",
        &DynamicImage::ImageRgba8(small.to_rgba8()),
        ImageFormat::Png,
    );
    save(
        "gray.png",
        &DynamicImage::ImageLuma8(small.to_luma8()),
        ImageFormat::Png,
    );
    save(
        "rgb16.png",
        &DynamicImage::ImageRgb16(small.to_rgb16()),
        ImageFormat::Png,
    );
    save("cat.jpg", &rgb, ImageFormat::Jpeg);
    save("cat.bmp", &rgb, ImageFormat::Bmp);
    save(
        "cat.gif",
        &DynamicImage::ImageRgba8(small.to_rgba8()),
        ImageFormat::Gif,
    );
    save(
        "cat.webp",
        &DynamicImage::ImageRgba8(small.to_rgba8()),
        ImageFormat::WebP,
    );
    seeds
}

// ---------------------------------------------------------------------------------------------
// Binding edits: 4 bytes per edit (op, tensor, two arguments).

fn bind_seeds() -> Seeds {
    vec![
        ("none".into(), Vec::new()),
        ("rename".into(), vec![0, 0, 3, 0]),
        ("reshape".into(), vec![2, 1, 0, 7]),
        ("truncate".into(), vec![4, 2, 0, 128]),
        ("retype".into(), vec![5, 3, 1, 0, 5, 4, 2, 0]),
        ("drop_dup".into(), vec![6, 0, 0, 0, 7, 1, 9, 0]),
    ]
}
