//! Error collection, tensor encodings, corrupted files and inspection.

use super::*;

// ---------------------------------------------------------------------------------------------
// Errors, encodings, corruption, inspection

#[test]
fn unsupported_nodes_are_all_listed_with_name_type_domain_and_opset() {
    let mut custom = NodeProto::new("FusedConv", "fused", &["a"], &["b"], vec![]);
    custom.domain = "com.microsoft".into();
    let nodes = vec![
        NodeProto::new("InstanceNormalization", "norm", &["x"], &["a"], vec![]),
        custom,
        NodeProto::new("Relu", "after", &["b"], &["c"], vec![]),
        NodeProto::new("LeakyRelu", "", &["x"], &["d"], vec![]),
        NodeProto::new("Add", "join", &["c", "d"], &["y"], vec![]),
    ];
    let mut m = model(17, &[("x", &[1, 3, 8, 8])], &["y"], nodes, vec![]);
    m.opset_import.push(OperatorSetIdProto {
        domain: "com.microsoft".into(),
        version: 1,
    });
    let err = import_with(&m, "unsupported", 1).expect_err("must fail");
    let text = err.to_string();
    println!("{text}");
    assert!(text.contains("3 node(s) cannot be imported"));
    assert!(text.contains("node norm (#0): InstanceNormalization (domain ai.onnx, opset 17)"));
    assert!(text.contains("node fused (#1): FusedConv (domain com.microsoft, opset 1)"));
    assert!(text.contains("node #3: LeakyRelu (domain ai.onnx, opset 17)"));
    let report = inspect_onnx(temp_dir("unsupported").join("model.onnx")).expect("inspect");
    println!("{report}");
    assert_eq!(
        report.unsupported_ops,
        [
            "InstanceNormalization",
            "LeakyRelu",
            "com.microsoft::FusedConv"
        ]
    );
    assert_eq!(report.op_counts.get("Relu"), Some(&1));
    assert!(!report.imports() && report.import_problems.len() == 3);
}

#[test]
fn initializers_in_every_encoding_and_external_data() {
    let dir = temp_dir("encodings");
    let want = [1.5f32, -2.0, 0.25, 3.0];
    let ext: Vec<u8> = [
        vec![0u8; 16],
        want.iter().flat_map(|v| v.to_le_bytes()).collect(),
    ]
    .concat();
    std::fs::write(dir.join("weights.bin"), ext).expect("write external");
    let base = |name: &str, dt: i32| TensorProto {
        name: name.into(),
        dims: vec![4],
        data_type: dt,
        ..Default::default()
    };
    let f16_bits: Vec<u16> = vec![0x3e00, 0xc000, 0x3400, 0x4200]; // 1.5, -2, 0.25, 3
    let kv = |k: &str, v: &str| StringStringEntryProto {
        key: k.into(),
        value: v.into(),
    };
    let encodings = vec![
        TensorProto::float_raw("raw", &[4], &want),
        TensorProto {
            float_data: want.to_vec(),
            ..base("float_data", data_type::FLOAT)
        },
        TensorProto {
            double_data: want.iter().map(|&v| v as f64).collect(),
            ..base("double_data", data_type::DOUBLE)
        },
        TensorProto {
            raw_data: f16_bits.iter().flat_map(|b| b.to_le_bytes()).collect(),
            ..base("f16_raw", data_type::FLOAT16)
        },
        TensorProto {
            int32_data: f16_bits.iter().map(|&b| b as i32).collect(),
            ..base("f16_int32", data_type::FLOAT16)
        },
        TensorProto {
            data_location: data_location::EXTERNAL,
            external_data: vec![
                kv("location", "weights.bin"),
                kv("offset", "16"),
                kv("length", "16"),
            ],
            ..base("external", data_type::FLOAT)
        },
    ];
    let x = Tensor::zeros(&[1, 4]);
    for t in encodings {
        let name = t.name.clone();
        let m = model(
            13,
            &[("x", &[1, 4])],
            &["y"],
            vec![NodeProto::new("Add", "", &["x", &name], &["y"], vec![])],
            vec![t],
        );
        std::fs::write(dir.join("model.onnx"), m.to_bytes()).expect("write");
        let got = load_onnx(dir.join("model.onnx"), &OnnxOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        check(
            &name,
            &run(&got.graph, std::slice::from_ref(&x)),
            &Tensor {
                shape: vec![1, 4],
                data: want.to_vec(),
            },
            0.0,
        );
    }
    // Integer shapes in int32_data and raw int64.
    for (name, t) in [
        (
            "int32_shape",
            TensorProto {
                int32_data: vec![2, 2],
                dims: vec![2],
                ..base("s", data_type::INT32)
            },
        ),
        (
            "raw_int64_shape",
            TensorProto {
                raw_data: [2i64, 2].iter().flat_map(|v| v.to_le_bytes()).collect(),
                dims: vec![2],
                ..base("s", data_type::INT64)
            },
        ),
    ] {
        let m = model(
            13,
            &[("x", &[1, 4])],
            &["y"],
            vec![NodeProto::new("Reshape", "", &["x", "s"], &["y"], vec![])],
            vec![t],
        );
        assert_eq!(import(&m, name).outputs[0].shape, [2, 2], "{name}");
    }
}

#[test]
fn bad_tensors_and_external_paths_are_errors_naming_the_tensor() {
    let kv = |k: &str, v: &str| StringStringEntryProto {
        key: k.into(),
        value: v.into(),
    };
    let ext = |loc: &str| TensorProto {
        name: "w".into(),
        dims: vec![4],
        data_type: data_type::FLOAT,
        data_location: data_location::EXTERNAL,
        external_data: vec![kv("location", loc)],
        ..Default::default()
    };
    let short = TensorProto {
        raw_data: vec![0; 12],
        ..TensorProto::float_raw("w", &[4], &[])
    };
    for (case, t, needle) in [
        ("escape", ext("../secret.bin"), "relative path inside"),
        ("absolute", ext("/etc/passwd"), "relative path inside"),
        ("missing", ext("nope.bin"), "nope.bin"),
        ("short_raw", short, "raw_data holds 12 bytes"),
    ] {
        let m = model(
            13,
            &[("x", &[1, 4])],
            &["y"],
            vec![NodeProto::new("Add", "", &["x", "w"], &["y"], vec![])],
            vec![t],
        );
        let err = import_with(&m, case, 1).expect_err("must fail").to_string();
        println!("{case}: {err}");
        assert!(
            err.contains("tensor \"w\"") && err.contains(needle),
            "{case}: {err}"
        );
    }
}

#[test]
fn corrupt_and_truncated_lenet5_never_panics() {
    let path = fixture_path("onnx/lenet5.onnx");
    let bytes = std::fs::read(&path).expect("lenet5.onnx");
    let dir = path.parent().expect("folder").to_path_buf();
    let opts = OnnxOptions::default();
    let (mut ok, mut failed, mut ran) = (0, 0, 0);
    let x = tensor(&[1, 1, 32, 32], 19);
    // An imported variant must also be a valid graph: it runs, or the interpreter reports an
    // error (a corrupted shape it cannot evaluate), without panicking.
    let mut tally = |r: Result<OnnxModel, OnnxError>| match r {
        Ok(m) => {
            ok += 1;
            if m.inputs.len() == 1
                && m.inputs[0].shape == x.shape
                && interp::run(&m.graph, std::slice::from_ref(&x)).is_ok()
            {
                ran += 1;
            }
        }
        Err(_) => failed += 1,
    };
    // Truncations: many near the start (headers, graph structure), then spread over the file.
    for i in 0..150 {
        let cut = if i < 75 {
            i * 13
        } else {
            (i - 75) * bytes.len() / 75
        };
        tally(load_onnx_bytes(&bytes[..cut], &path, &dir, &opts));
    }
    // Byte flips at deterministic pseudo-random positions, biased towards the small
    // structural region before the large weight blobs.
    let mut s = 0x1234_5678_9abc_def0u64;
    for i in 0..250 {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let span = if i % 2 == 0 {
            bytes.len()
        } else {
            bytes.len().min(4096)
        };
        let pos = (s >> 33) as usize % span;
        let mut v = bytes.clone();
        v[pos] ^= 1 << ((s >> 20) % 8);
        if i % 5 == 0 {
            v[pos] = 0xff;
        }
        tally(load_onnx_bytes(&v, &path, &dir, &opts));
    }
    println!(
        "400 corrupted variants: {ok} imported ({ran} of them ran), {failed} rejected with an error, none panicked"
    );
    assert_eq!(ok + failed, 400);
    assert!(failed > 100, "most truncations must be rejected");
}

#[test]
fn not_a_model_is_a_decode_error() {
    let dir = temp_dir("garbage");
    let path = dir.join("garbage.onnx");
    std::fs::write(&path, b"\x08\x07\x12\xff\xff\xff\xff\x0fnot protobuf").expect("write");
    let err = load_onnx(&path, &OnnxOptions::default()).expect_err("must fail");
    println!("{err}");
    assert!(matches!(err, OnnxError::Decode { .. }), "{err}");
    let missing =
        load_onnx(dir.join("absent.onnx"), &OnnxOptions::default()).expect_err("must fail");
    assert!(matches!(missing, OnnxError::Read { .. }), "{missing}");
}

#[test]
fn inspect_reports_the_fixture_models() {
    for (name, op, count) in [
        ("lenet5", "Gemm", 3),
        ("squeezenet1_1", "Concat", 8),
        ("mobilenet_v2", "Conv", 52),
    ] {
        let r = inspect_onnx(fixture_path(&format!("onnx/{name}.onnx"))).expect("inspect");
        println!("{r}\n");
        assert_eq!(
            r.op_counts.get(op),
            Some(&count),
            "{name}: {:?}",
            r.op_counts
        );
        assert!(
            r.unsupported_ops.is_empty() && r.imports(),
            "{name}: {:?}",
            r.import_problems
        );
        assert_eq!(r.inputs.len(), 1);
        assert_eq!(r.opsets, [("ai.onnx".to_string(), 17)]);
    }
}
