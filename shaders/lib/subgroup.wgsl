enable subgroups;

// Subgroup register-tile steps shared by the subgroup kernels (conv2d_sg,
// conv2d_1x1_sg, conv2d_winograd_gemm, linear_sg). Needs the subgroups feature. Lane j of the
// subgroup (`@builtin(subgroup_invocation_id)`, not the workgroup index: the two need not match)
// loaded the weights of output channels j (`va`) and j + 8 (`vb`); subgroupBroadcast hands them
// to every lane, which multiplies them into its own 16-channel x 4-pixel accumulator tile.
// `subgroupBroadcast` wants a constant lane, hence the unrolled lines.
//
// The `_wide` twins serve the wide kernels (workgroups of 8 * GROUPS lanes, for subgroups of
// 16 or more): each group of 8 lanes of a subgroup owns its own block, and lane `base + j`
// (`base` = the lane id with its low 3 bits cleared) holds what lane j holds above.
// `subgroupShuffle` takes a lane that differs between the groups, which `subgroupBroadcast`
// (one constant lane for the whole subgroup) cannot. On lavapipe the broadcast forms stay: a
// constant-lane broadcast is one element extract there, a shuffle a gather. The Winograd GEMM
// uses only the broadcast forms, in 8-invocation workgroups: such a workgroup lies in one
// subgroup (lanes 0..7) on any device with subgroups of 8 or more lanes, so it is correct on
// every size the engine runs subgroup kernels on, only not filling wider subgroups.

// One input channel: acc[j] += va@j * xv, acc[8 + j] += vb@j * xv.
fn sg_fma16(acc: ptr<function, array<vec4<f32>, 16>>, va: f32, vb: f32, xv: vec4<f32>) {
    (*acc)[0] += subgroupBroadcast(va, 0u) * xv;
    (*acc)[1] += subgroupBroadcast(va, 1u) * xv;
    (*acc)[2] += subgroupBroadcast(va, 2u) * xv;
    (*acc)[3] += subgroupBroadcast(va, 3u) * xv;
    (*acc)[4] += subgroupBroadcast(va, 4u) * xv;
    (*acc)[5] += subgroupBroadcast(va, 5u) * xv;
    (*acc)[6] += subgroupBroadcast(va, 6u) * xv;
    (*acc)[7] += subgroupBroadcast(va, 7u) * xv;
    (*acc)[8] += subgroupBroadcast(vb, 0u) * xv;
    (*acc)[9] += subgroupBroadcast(vb, 1u) * xv;
    (*acc)[10] += subgroupBroadcast(vb, 2u) * xv;
    (*acc)[11] += subgroupBroadcast(vb, 3u) * xv;
    (*acc)[12] += subgroupBroadcast(vb, 4u) * xv;
    (*acc)[13] += subgroupBroadcast(vb, 5u) * xv;
    (*acc)[14] += subgroupBroadcast(vb, 6u) * xv;
    (*acc)[15] += subgroupBroadcast(vb, 7u) * xv;
}

// wv . (x0, x1, x2, x3): 4 input channels' weights times their 4-pixel inputs.
fn sg_dot4(wv: vec4<f32>, x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>) -> vec4<f32> {
    return wv.x * x0 + wv.y * x1 + wv.z * x2 + wv.w * x3;
}

// Four input channels at once: va, vb hold input channels c..c+3 of output channels j and
// j + 8; x0..x3 are the 4 pixels' values of those input channels.
fn sg_fma16x4(acc: ptr<function, array<vec4<f32>, 16>>, va: vec4<f32>, vb: vec4<f32>,
              x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>) {
    (*acc)[0] += sg_dot4(subgroupBroadcast(va, 0u), x0, x1, x2, x3);
    (*acc)[1] += sg_dot4(subgroupBroadcast(va, 1u), x0, x1, x2, x3);
    (*acc)[2] += sg_dot4(subgroupBroadcast(va, 2u), x0, x1, x2, x3);
    (*acc)[3] += sg_dot4(subgroupBroadcast(va, 3u), x0, x1, x2, x3);
    (*acc)[4] += sg_dot4(subgroupBroadcast(va, 4u), x0, x1, x2, x3);
    (*acc)[5] += sg_dot4(subgroupBroadcast(va, 5u), x0, x1, x2, x3);
    (*acc)[6] += sg_dot4(subgroupBroadcast(va, 6u), x0, x1, x2, x3);
    (*acc)[7] += sg_dot4(subgroupBroadcast(va, 7u), x0, x1, x2, x3);
    (*acc)[8] += sg_dot4(subgroupBroadcast(vb, 0u), x0, x1, x2, x3);
    (*acc)[9] += sg_dot4(subgroupBroadcast(vb, 1u), x0, x1, x2, x3);
    (*acc)[10] += sg_dot4(subgroupBroadcast(vb, 2u), x0, x1, x2, x3);
    (*acc)[11] += sg_dot4(subgroupBroadcast(vb, 3u), x0, x1, x2, x3);
    (*acc)[12] += sg_dot4(subgroupBroadcast(vb, 4u), x0, x1, x2, x3);
    (*acc)[13] += sg_dot4(subgroupBroadcast(vb, 5u), x0, x1, x2, x3);
    (*acc)[14] += sg_dot4(subgroupBroadcast(vb, 6u), x0, x1, x2, x3);
    (*acc)[15] += sg_dot4(subgroupBroadcast(vb, 7u), x0, x1, x2, x3);
}

// sum_j wa[j] * v@j + wb[j] * v@(4 + j): one batch row's share of 8 columns, where lane j
// loaded column j of x (linear_sg).
fn sg_dot8(wa: vec4<f32>, wb: vec4<f32>, v: f32) -> f32 {
    let xa = vec4<f32>(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u), subgroupBroadcast(v, 2u), subgroupBroadcast(v, 3u));
    let xb = vec4<f32>(subgroupBroadcast(v, 4u), subgroupBroadcast(v, 5u), subgroupBroadcast(v, 6u), subgroupBroadcast(v, 7u));
    return dot(wa, xa) + dot(wb, xb);
}

// sg_fma16 for groups of 8 lanes at lanes base..base+7 of a wider subgroup (unrolled: the
// accumulators must stay registers, which a loop's dynamic index may not leave them).
fn sg_fma16_wide(acc: ptr<function, array<vec4<f32>, 16>>, va: f32, vb: f32, xv: vec4<f32>, base: u32) {
    (*acc)[0] += subgroupShuffle(va, base) * xv;
    (*acc)[1] += subgroupShuffle(va, base | 1u) * xv;
    (*acc)[2] += subgroupShuffle(va, base | 2u) * xv;
    (*acc)[3] += subgroupShuffle(va, base | 3u) * xv;
    (*acc)[4] += subgroupShuffle(va, base | 4u) * xv;
    (*acc)[5] += subgroupShuffle(va, base | 5u) * xv;
    (*acc)[6] += subgroupShuffle(va, base | 6u) * xv;
    (*acc)[7] += subgroupShuffle(va, base | 7u) * xv;
    (*acc)[8] += subgroupShuffle(vb, base) * xv;
    (*acc)[9] += subgroupShuffle(vb, base | 1u) * xv;
    (*acc)[10] += subgroupShuffle(vb, base | 2u) * xv;
    (*acc)[11] += subgroupShuffle(vb, base | 3u) * xv;
    (*acc)[12] += subgroupShuffle(vb, base | 4u) * xv;
    (*acc)[13] += subgroupShuffle(vb, base | 5u) * xv;
    (*acc)[14] += subgroupShuffle(vb, base | 6u) * xv;
    (*acc)[15] += subgroupShuffle(vb, base | 7u) * xv;
}

// sg_fma16x4 for groups of 8 lanes at lanes base..base+7 of a wider subgroup.
fn sg_fma16x4_wide(acc: ptr<function, array<vec4<f32>, 16>>, va: vec4<f32>, vb: vec4<f32>,
                   x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>, base: u32) {
    (*acc)[0] += sg_dot4(subgroupShuffle(va, base), x0, x1, x2, x3);
    (*acc)[1] += sg_dot4(subgroupShuffle(va, base | 1u), x0, x1, x2, x3);
    (*acc)[2] += sg_dot4(subgroupShuffle(va, base | 2u), x0, x1, x2, x3);
    (*acc)[3] += sg_dot4(subgroupShuffle(va, base | 3u), x0, x1, x2, x3);
    (*acc)[4] += sg_dot4(subgroupShuffle(va, base | 4u), x0, x1, x2, x3);
    (*acc)[5] += sg_dot4(subgroupShuffle(va, base | 5u), x0, x1, x2, x3);
    (*acc)[6] += sg_dot4(subgroupShuffle(va, base | 6u), x0, x1, x2, x3);
    (*acc)[7] += sg_dot4(subgroupShuffle(va, base | 7u), x0, x1, x2, x3);
    (*acc)[8] += sg_dot4(subgroupShuffle(vb, base), x0, x1, x2, x3);
    (*acc)[9] += sg_dot4(subgroupShuffle(vb, base | 1u), x0, x1, x2, x3);
    (*acc)[10] += sg_dot4(subgroupShuffle(vb, base | 2u), x0, x1, x2, x3);
    (*acc)[11] += sg_dot4(subgroupShuffle(vb, base | 3u), x0, x1, x2, x3);
    (*acc)[12] += sg_dot4(subgroupShuffle(vb, base | 4u), x0, x1, x2, x3);
    (*acc)[13] += sg_dot4(subgroupShuffle(vb, base | 5u), x0, x1, x2, x3);
    (*acc)[14] += sg_dot4(subgroupShuffle(vb, base | 6u), x0, x1, x2, x3);
    (*acc)[15] += sg_dot4(subgroupShuffle(vb, base | 7u), x0, x1, x2, x3);
}

// sg_dot8 for groups of 8 lanes at lanes base..base+7 of a wider subgroup.
fn sg_dot8_wide(wa: vec4<f32>, wb: vec4<f32>, v: f32, base: u32) -> f32 {
    let xa = vec4<f32>(subgroupShuffle(v, base), subgroupShuffle(v, base | 1u), subgroupShuffle(v, base | 2u), subgroupShuffle(v, base | 3u));
    let xb = vec4<f32>(subgroupShuffle(v, base | 4u), subgroupShuffle(v, base | 5u), subgroupShuffle(v, base | 6u), subgroupShuffle(v, base | 7u));
    return dot(wa, xa) + dot(wb, xb);
}

// Which block of the workgroup a lane's group of 8 owns in the wide kernels: groups are
// numbered by subgroup, then by lane / 8 inside it, so the 8 lanes that shuffle among
// themselves always agree on their block whatever the driver's subgroup size (8, 16, 32, 64)
// and however it maps invocations to subgroups. Assumes full subgroups of a multiple of 8
// lanes (the workgroup is a multiple of the subgroup size, or one partial subgroup).
fn sg_group_in_workgroup(sg_id: u32, sg_size: u32, lane: u32) -> u32 {
    return sg_id * (sg_size / 8u) + lane / 8u;
}
