//! `Plan::profile` on the GPU (lavapipe in CI): one timing per launch, never negative, and the
//! same outputs as `Plan::run`. No timed assertions.

use std::sync::{Arc, OnceLock};

use wgcnn_exec::Plan;
use wgcnn_exec::profile::{self, Category, ProfileMethod};
use wgcnn_graph::Tensor;
use wgcnn_io::{RuleWeights, rule_input};
use wgcnn_kernels::{Context, ContextOptions};
use wgcnn_models::BuildOptions;

fn context() -> Arc<Context> {
    static CTX: OnceLock<Arc<Context>> = OnceLock::new();
    CTX.get_or_init(|| {
        Arc::new(Context::new(&ContextOptions::default()).expect("a GPU adapter (lavapipe in CI)"))
    })
    .clone()
}

/// `name` at `size` x `size`, batch 1, rule weights, planned on the shared context.
fn plan(name: &str, size: usize) -> (Plan, Tensor) {
    let info = wgcnn_models::find(name).expect("registered model");
    let options = BuildOptions {
        batch: 1,
        height: size,
        width: size,
        classes: info.classes,
    };
    let mut graph = info.graph(&options).expect("graph builds");
    graph
        .bind(&RuleWeights::for_graph(&graph))
        .expect("rule weights bind");
    let shape = graph.shape(graph.inputs[0]).to_vec();
    let input = Tensor {
        data: rule_input("input", &shape),
        shape,
    };
    (Plan::new(context(), &graph).expect("plan"), input)
}

/// Profiles `name` with `method` (`None`: the default choice) and checks the result.
fn check(name: &str, size: usize, method: Option<ProfileMethod>) {
    let (plan, input) = plan(name, size);
    let want = plan.run(std::slice::from_ref(&input)).expect("run");
    let got = match method {
        None => plan.profile(std::slice::from_ref(&input)),
        Some(m) => plan.profile_with(std::slice::from_ref(&input), m),
    }
    .expect("profile");
    let ctx = context();
    println!(
        "{name} @{size}: asked {method:?}, used {:?} (features {:?}), {} launches, total {:.3} ms, wall {:.3} ms",
        got.method,
        ctx.features,
        got.launches.len(),
        got.total_ms(),
        got.wall_ms
    );
    let best = ProfileMethod::for_features(ctx.features);
    match method {
        Some(m) if m.supported(ctx.features) => assert_eq!(got.method, m),
        _ => assert_eq!(got.method, best),
    }
    assert_eq!(
        got.launches.len(),
        plan.launches().len(),
        "one timing per launch"
    );
    for (t, l) in got.launches.iter().zip(plan.launches()) {
        assert_eq!(
            (t.label.as_str(), t.kernel),
            (l.label.as_str(), l.kernel.name)
        );
        assert!(t.ms >= 0.0 && t.ms.is_finite(), "{}: {} ms", t.label, t.ms);
    }
    assert_eq!(got.outputs.len(), want.len());
    for (g, w) in got.outputs.iter().zip(&want) {
        let diff = g.max_abs_diff(w);
        println!(
            "{name} @{size}: profile vs run output {:?}: max abs diff {diff:e}",
            g.shape
        );
        assert_eq!(g.shape, w.shape);
        assert!(
            diff <= 1e-6 * w.data.iter().fold(1f32, |m, v| m.max(v.abs())),
            "outputs differ by {diff}"
        );
    }
    let layers = profile::layers(&got.launches, plan.graph());
    let launched: usize = layers.iter().map(|l| l.launches).sum();
    assert_eq!(
        launched,
        got.launches.len(),
        "every launch lands in one layer"
    );
    assert!(
        layers
            .iter()
            .any(|l| l.category == Category::Conv && l.flops > 0 && l.output_shape.is_some())
    );
    let shares = profile::category_shares(&got.launches);
    for s in &shares {
        println!(
            "  {:<12} {:>3} launches {:>8.3} ms {:>5.1}%",
            s.category.name(),
            s.launches,
            s.ms,
            s.share * 100.0
        );
    }
    assert_eq!(
        shares.iter().map(|s| s.launches).sum::<usize>(),
        got.launches.len()
    );
}

#[test]
fn lenet5_profile_times_every_launch_and_matches_run() {
    check("lenet5", 32, None);
}

#[test]
fn squeezenet1_1_at_64_profile_times_every_launch_and_matches_run() {
    check("squeezenet1_1", 64, None);
}

#[test]
fn squeezenet1_1_at_64_profile_with_one_pass_per_launch_matches_run() {
    check("squeezenet1_1", 64, Some(ProfileMethod::PassPerLaunch));
}

#[test]
fn lenet5_profile_timed_on_the_cpu_per_submission_matches_run() {
    check("lenet5", 32, Some(ProfileMethod::CpuPerSubmission));
}

#[test]
fn every_device_supports_cpu_timing_and_the_best_method_is_supported() {
    let features = context().features;
    assert!(ProfileMethod::CpuPerSubmission.supported(wgpu::Features::empty()));
    assert_eq!(
        ProfileMethod::for_features(wgpu::Features::empty()),
        ProfileMethod::CpuPerSubmission
    );
    assert_eq!(
        ProfileMethod::for_features(wgpu::Features::TIMESTAMP_QUERY),
        ProfileMethod::PassPerLaunch
    );
    assert!(ProfileMethod::for_features(features).supported(features));
}

#[test]
fn profile_of_2100_launches_spans_two_query_sets_and_matches_run() {
    // A chain of ReLUs: one tiny launch each, more launches than one query set holds
    // (QUERY_SET_MAX_QUERIES / 2 = 2048).
    let mut b = wgcnn_graph::GraphBuilder::new();
    let mut x = b.input("input", &[1, 4, 2, 2]);
    for i in 0..2100 {
        x = b
            .node(
                &format!("relu{i}"),
                wgcnn_graph::Op::Act(wgcnn_graph::Activation::Relu),
                &[x],
            )
            .expect("relu node");
    }
    b.output(x);
    let graph = b.finish();
    let plan = Plan::new(context(), &graph).expect("plan");
    let input = Tensor {
        shape: vec![1, 4, 2, 2],
        data: (0..16).map(|i| i as f32 - 8.0).collect(),
    };
    let want = plan.run(std::slice::from_ref(&input)).expect("run");
    let got = plan.profile(std::slice::from_ref(&input)).expect("profile");
    println!(
        "2100 ReLUs: {} launches, method {:?}, total {:.3} ms, wall {:.3} ms",
        got.launches.len(),
        got.method,
        got.total_ms(),
        got.wall_ms
    );
    assert_eq!(got.launches.len(), plan.launches().len());
    assert!(got.launches.len() > 2048, "{} launches", got.launches.len());
    assert!(got.launches.iter().all(|l| l.ms >= 0.0 && l.ms.is_finite()));
    assert_eq!(got.outputs, want);
    let layers = profile::layers(&got.launches, plan.graph());
    assert_eq!(layers.len(), got.launches.len());
    assert!(
        layers
            .iter()
            .all(|l| l.category == Category::Elementwise && l.flops == 0)
    );
}
