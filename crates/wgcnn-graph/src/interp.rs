//! CPU reference interpreter (being written: only some ops so far).
use crate::{GraphError, Op, Tensor};

/// Evaluates one op on CPU tensors.
pub fn eval_op(op: &Op, inputs: &[&Tensor]) -> Result<Tensor, GraphError> {
    match op {
        Op::Act(a) => Ok(Tensor { shape: inputs[0].shape.clone(), data: inputs[0].data.iter().map(|&v| a.apply(v)).collect() }),
        Op::BatchNorm { eps } => {
            let x = inputs[0];
            let c = x.shape[1];
            let inner: usize = x.shape[2..].iter().product();
            let mut out = x.clone();
            for (i, v) in out.data.iter_mut().enumerate() {
                let ch = (i / inner) % c;
                let scale = inputs[1].data[ch] / (inputs[4].data[ch] + eps).sqrt();
                *v = (*v - inputs[3].data[ch]) * scale + inputs[2].data[ch];
            }
            Ok(out)
        }
        _ => Err(GraphError::Invalid(format!("interpreter: {} not yet written", op.kind()))),
    }
}
