//! MTCNN face detection (Zhang et al. 2016) as facenet-pytorch 2.6.0 runs it: the three nets
//! ([`nets`]: P-Net on every pyramid level, R-Net on 24x24 crops, O-Net on 48x48 crops with
//! five landmarks) and the cascade between them ([`cascade`]: candidates, NMS, regression,
//! squaring, crops). One weight file holds all three nets under `pnet.*`, `rnet.*`, `onet.*`;
//! [`NetWeights`] shows a graph only its net's keys.
//!
//! [`Interpreter`] runs the cascade on the CPU interpreter: the reference the GPU path is
//! tested against.

pub mod cascade;
pub mod nets;

use wgcnn_graph::{Graph, GraphError, Shape, Tensor, WeightSource, interp};

pub use cascade::{Backend, Candidate, CascadeConfig, Face, Refiner, Trace, detect, refine};

/// The keys of one net (`"pnet"`, `"rnet"`, `"onet"`) in a file that holds all three.
pub struct NetWeights<'a> {
    pub source: &'a dyn WeightSource,
    pub net: &'a str,
}

impl NetWeights<'_> {
    fn owns(&self, key: &str) -> bool {
        key.strip_prefix(self.net)
            .is_some_and(|rest| rest.starts_with('.'))
    }
}

impl WeightSource for NetWeights<'_> {
    fn keys(&self) -> Vec<String> {
        self.source
            .keys()
            .into_iter()
            .filter(|k| self.owns(k))
            .collect()
    }

    fn shape(&self, key: &str) -> Option<Shape> {
        self.owns(key).then(|| self.source.shape(key)).flatten()
    }

    fn load(&self, key: &str) -> Result<Vec<f32>, String> {
        if !self.owns(key) {
            return Err(format!("{key} is not a {} key", self.net));
        }
        self.source.load(key)
    }
}

/// Binds `graph` (one of [`nets`]' graphs) to the `net` keys of `source`.
pub fn bind(graph: &mut Graph, source: &dyn WeightSource, net: &str) -> Result<(), GraphError> {
    graph.bind(&NetWeights { source, net })
}

/// The cascade's nets on the CPU interpreter (graphs built and bound per call: a test oracle,
/// not a fast path).
pub struct Interpreter<'a> {
    pub weights: &'a dyn WeightSource,
}

impl Backend for Interpreter<'_> {
    fn pyramid(
        &mut self,
        image: &Tensor,
        levels: &[[usize; 2]],
    ) -> Result<Vec<(Tensor, Tensor)>, GraphError> {
        let mut g = nets::pyramid(image.shape[2], image.shape[3], levels)?;
        bind(&mut g, self.weights, "pnet")?;
        let mut out = interp::run(&g, std::slice::from_ref(image))?.into_iter();
        let mut maps = Vec::new();
        while let (Some(reg), Some(prob)) = (out.next(), out.next()) {
            maps.push((reg, prob));
        }
        Ok(maps)
    }
}

impl Refiner for Interpreter<'_> {
    type Error = GraphError;

    fn rnet(&mut self, crops: Tensor) -> Result<(Tensor, Tensor), GraphError> {
        let mut g = nets::rnet(crops.shape[0])?;
        bind(&mut g, self.weights, "rnet")?;
        let mut out = interp::run(&g, &[crops])?.into_iter();
        match (out.next(), out.next()) {
            (Some(reg), Some(prob)) => Ok((reg, prob)),
            _ => Err(GraphError::Invalid(
                "R-Net returned fewer than 2 outputs".into(),
            )),
        }
    }

    fn onet(&mut self, crops: Tensor) -> Result<(Tensor, Tensor, Tensor), GraphError> {
        let mut g = nets::onet(crops.shape[0])?;
        bind(&mut g, self.weights, "onet")?;
        let mut out = interp::run(&g, &[crops])?.into_iter();
        match (out.next(), out.next(), out.next()) {
            (Some(reg), Some(l), Some(prob)) => Ok((reg, l, prob)),
            _ => Err(GraphError::Invalid(
                "O-Net returned fewer than 3 outputs".into(),
            )),
        }
    }
}
