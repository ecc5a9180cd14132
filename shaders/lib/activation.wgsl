// Activation functions of every kernel with an epilogue (unary, binary, the convolutions,
// linear). Codes and formulas are those of `wgcnn_graph::Activation::code` / `apply`:
// 0 identity, 1 relu, 2 clip(p0, p1), 3 sigmoid, 4 silu, 5 hardsigmoid(alpha p0, beta p1),
// 6 hardswish, 7 tanh.
//
// Overflow guards: under fast math (Metal, and lavapipe's tanh = (e^2x - 1) / (e^2x + 1)) an
// infinite intermediate turns into NaN, so exp and tanh never see an argument that overflows.
// tanh is +-1 in f32 beyond |x| = 9.1 and sigmoid's exp(80) stays finite; silu is 0 below -80
// (its true value is under 1e-33 there). The results equal the unguarded formulas' f32 values
// but for differences under 2e-33 absolute.

const ACT_TANH_LIMIT: f32 = 15.0;
const ACT_EXP_LIMIT: f32 = 80.0;

// 1 / (1 + e^-v), with e's argument kept finite.
fn act_sigmoid_denominator(v: f32) -> f32 {
    return 1.0 + exp(-clamp(v, -ACT_EXP_LIMIT, ACT_EXP_LIMIT));
}

fn act_apply(v: f32, code: u32, p0: f32, p1: f32) -> f32 {
    switch code {
        case 1u: { return max(v, 0.0); }
        case 2u: { return clamp(v, p0, p1); }
        case 3u: { return 1.0 / act_sigmoid_denominator(v); }
        case 4u: { return select(v / act_sigmoid_denominator(v), 0.0, v < -ACT_EXP_LIMIT); }
        case 5u: { return clamp(p0 * v + p1, 0.0, 1.0); }
        case 6u: { return v * clamp(v / 6.0 + 0.5, 0.0, 1.0); }
        case 7u: { return tanh(clamp(v, -ACT_TANH_LIMIT, ACT_TANH_LIMIT)); }
        default: { return v; }
    }
}

// act_apply on 4 values with one switch (vector code where the kernel stores vec4s).
fn act_apply4(v: vec4<f32>, code: u32, p0: f32, p1: f32) -> vec4<f32> {
    let zero = vec4<f32>(0.0);
    let one = vec4<f32>(1.0);
    let e = vec4<f32>(ACT_EXP_LIMIT);
    let t = vec4<f32>(ACT_TANH_LIMIT);
    switch code {
        case 1u: { return max(v, zero); }
        case 2u: { return clamp(v, vec4<f32>(p0), vec4<f32>(p1)); }
        case 3u: { return one / (one + exp(-clamp(v, -e, e))); }
        case 4u: { return select(v / (one + exp(-clamp(v, -e, e))), zero, v < -e); }
        case 5u: { return clamp(p0 * v + p1, zero, one); }
        case 6u: { return v * clamp(v / 6.0 + 0.5, zero, one); }
        case 7u: { return tanh(clamp(v, -t, t)); }
        default: { return v; }
    }
}
