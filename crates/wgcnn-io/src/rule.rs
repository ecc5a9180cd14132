//! The golden fixtures' weight rule (`../shared/fixtures/README.md`, reference `detwts.py`):
//! every floating-point tensor of a state dict is a pure function of its key and shape, so tests
//! rebuild the exact weights behind a fixture without shipping them.
//!
//! `u[i] = (splitmix64(fnv1a64(key) + i) >> 40) / 2^24` in f64, then per key:
//! `running_mean` → `(u - 0.5) * 0.2`, `running_var` → `0.5 + u`, 1-D `…weight` → `0.5 + u`,
//! 1-D `…bias` → `(u - 0.5) * 0.2`, 2 or more dims → `(2u - 1) * sqrt(6 / fan_in)` with
//! `fan_in = n / shape[0]`; anything else is left alone. Rounded once to f32.

/// FNV-1a, 64-bit, over `bytes` (wrapping arithmetic).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The SplitMix64 output function of counter `x` (wrapping arithmetic).
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// An iterator over the `n` uniforms of `key`: values in `[0, 1)` with 24 random bits (exact in
/// f32 and f64).
pub fn uniform(key: &str, n: usize) -> impl Iterator<Item = f64> {
    let base = fnv1a64(key.as_bytes());
    (0..n as u64).map(move |i| (splitmix64(base.wrapping_add(i)) >> 40) as f64 / 16_777_216.0)
}

/// The rule's values for the state-dict tensor `key` of `shape`, row-major; `None` for tensors
/// the rule leaves alone (`num_batches_tracked`, 0-dim tensors, 1-D tensors that are neither
/// statistics nor a `weight`/`bias`).
pub fn rule_tensor(key: &str, shape: &[usize]) -> Option<Vec<f32>> {
    if key.ends_with("num_batches_tracked") || shape.is_empty() {
        return None;
    }
    let n: usize = shape.iter().product();
    let f: Box<dyn Fn(f64) -> f64> = if key.ends_with("running_mean") {
        Box::new(|u| (u - 0.5) * 0.2)
    } else if key.ends_with("running_var") {
        Box::new(|u| 0.5 + u)
    } else if shape.len() == 1 && key.ends_with("weight") {
        Box::new(|u| 0.5 + u)
    } else if shape.len() == 1 && key.ends_with("bias") {
        Box::new(|u| (u - 0.5) * 0.2)
    } else if shape.len() >= 2 {
        if n == 0 {
            return Some(Vec::new());
        }
        let fan_in = (n / shape[0]) as f64;
        let scale = (6.0 / fan_in).sqrt();
        Box::new(move |u| (2.0 * u - 1.0) * scale)
    } else {
        return None;
    };
    Some(uniform(key, n).map(|u| f(u) as f32).collect())
}

/// The fixtures' deterministic input: `2u - 1` over `key` (values in `[-1, 1)`), e.g.
/// `rule_input("input", &[1, 3, 64, 64])`.
pub fn rule_input(key: &str, shape: &[usize]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    uniform(key, n).map(|u| (2.0 * u - 1.0) as f32).collect()
}

/// The detection fixtures' image: `u` over `key` (values in `[0, 1)`), e.g.
/// `rule_image("image", &[3, 120, 160])`.
pub fn rule_image(key: &str, shape: &[usize]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    uniform(key, n).map(|u| u as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_reproduces_readme_check_values() {
        let h = fnv1a64(b"conv1.weight");
        println!("fnv1a64(conv1.weight) = {h:#018x}");
        assert_eq!(h, 0x69a2_9a2c_ee47_d254);
        let u: Vec<f64> = uniform("conv1.weight", 4).collect();
        println!("u = {u:?}");
        assert_eq!(
            u,
            [
                0.5450749397277832,
                0.07481473684310913,
                0.9600188732147217,
                0.843685507774353
            ]
        );
        let w = rule_tensor("conv1.weight", &[2, 1, 1, 2]);
        println!("conv1.weight [2,1,1,2] = {w:?}");
        assert_eq!(w, Some(vec![0.15614417, -1.472885, 1.5935521, 1.1905615]));
    }

    #[test]
    fn rule_per_key_cases_and_untouched_keys() {
        let u: Vec<f64> = uniform("bn1.running_var", 3).collect();
        let var = rule_tensor("bn1.running_var", &[3]).unwrap();
        let mean = rule_tensor("bn1.running_mean", &[3]).unwrap();
        let mu: Vec<f64> = uniform("bn1.running_mean", 3).collect();
        for i in 0..3 {
            assert_eq!(var[i], (0.5 + u[i]) as f32);
            assert_eq!(mean[i], ((mu[i] - 0.5) * 0.2) as f32);
        }
        let gamma = rule_tensor("bn1.weight", &[4]).unwrap();
        assert!(gamma.iter().all(|&g| (0.5..1.5).contains(&g)), "{gamma:?}");
        let beta = rule_tensor("fc.bias", &[4]).unwrap();
        assert!(beta.iter().all(|&b| (-0.1..0.1).contains(&b)), "{beta:?}");
        // A 2-D `bias`-named tensor follows the fan-in rule, not the bias rule.
        let lin = rule_tensor("fc.weight", &[3, 6]).unwrap();
        assert!(
            lin.iter().all(|&v| v.abs() <= 1.0),
            "fan_in 6 bounds |v| by 1: {lin:?}"
        );
        assert_eq!(rule_tensor("bn1.num_batches_tracked", &[]), None);
        assert_eq!(rule_tensor("scalar", &[]), None);
        assert_eq!(rule_tensor("pos.alpha", &[5]), None);
        assert_eq!(rule_tensor("empty.weight", &[0, 3]), Some(vec![]));
        println!("bn1.running_var = {var:?}, bn1.running_mean = {mean:?}");
    }

    #[test]
    fn rule_input_and_image_ranges() {
        let x = rule_input("input", &[1, 1, 4, 4]);
        assert_eq!(x.len(), 16);
        assert!(x.iter().all(|v| (-1.0..1.0).contains(v)));
        let img = rule_image("image", &[3, 2, 2]);
        assert!(img.iter().all(|v| (0.0..1.0).contains(v)));
        println!("input[..4] = {:?}, image[..4] = {:?}", &x[..4], &img[..4]);
    }
}
