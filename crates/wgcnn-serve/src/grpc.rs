//! The gRPC half of the protocol: `inference.GRPCInferenceService` (tonic, stubs generated in
//! build.rs from proto/inference.proto). Outputs always travel in `raw_output_contents`, as
//! Triton sends them.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use tokio::net::TcpListener;
use tonic::{Request, Response, Status};

use crate::tensor::{InTensor, InferRequest, OutputRequest, encode_bytes};
use crate::{ErrorKind, SERVER_NAME, SERVER_VERSION, ServeError, State, VERSION};

/// The generated messages and service traits.
#[allow(clippy::all, missing_docs, rust_2018_idioms)]
pub mod pb {
    tonic::include_proto!("inference");
}

use pb::grpc_inference_service_server::{GrpcInferenceService, GrpcInferenceServiceServer};
use pb::infer_parameter::ParameterChoice;
use pb::model_infer_response::InferOutputTensor;
use pb::model_metadata_response::TensorMetadata;

/// Serves gRPC on `listener` until `stop` resolves, then drains in-flight calls.
pub async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let limit = state.max_body_bytes;
    let service = GrpcInferenceServiceServer::new(Service { state })
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(tonic::transport::server::TcpIncoming::from(listener), stop)
        .await
}

struct Service {
    state: Arc<State>,
}

fn status(e: ServeError) -> Status {
    match e.kind {
        ErrorKind::BadRequest => Status::invalid_argument(e.message),
        ErrorKind::NotFound => Status::not_found(e.message),
        ErrorKind::TooLarge => Status::resource_exhausted(e.message),
        ErrorKind::Unavailable => Status::unavailable(e.message),
        ErrorKind::Internal => Status::internal(e.message),
    }
}

fn int_param(p: Option<&pb::InferParameter>) -> Option<usize> {
    match p?.parameter_choice.as_ref()? {
        ParameterChoice::Int64Param(n) => usize::try_from(*n).ok(),
        ParameterChoice::Uint64Param(n) => usize::try_from(*n).ok(),
        ParameterChoice::StringParam(s) => s.parse().ok(),
        _ => None,
    }
}

/// Typed `contents` as raw little-endian bytes of `datatype`.
fn contents_to_raw(
    name: &str,
    datatype: &str,
    c: &pb::InferTensorContents,
) -> Result<Vec<u8>, ServeError> {
    let le = |v: &mut dyn Iterator<Item = Vec<u8>>| v.flatten().collect::<Vec<u8>>();
    Ok(match datatype {
        "BOOL" => c.bool_contents.iter().map(|&b| b as u8).collect(),
        "INT8" => le(&mut c
            .int_contents
            .iter()
            .map(|&v| (v as i8).to_le_bytes().to_vec())),
        "INT16" => le(&mut c
            .int_contents
            .iter()
            .map(|&v| (v as i16).to_le_bytes().to_vec())),
        "INT32" => le(&mut c.int_contents.iter().map(|&v| v.to_le_bytes().to_vec())),
        "INT64" => le(&mut c.int64_contents.iter().map(|&v| v.to_le_bytes().to_vec())),
        "UINT8" => c.uint_contents.iter().map(|&v| v as u8).collect(),
        "UINT16" => le(&mut c
            .uint_contents
            .iter()
            .map(|&v| (v as u16).to_le_bytes().to_vec())),
        "UINT32" => le(&mut c.uint_contents.iter().map(|&v| v.to_le_bytes().to_vec())),
        "UINT64" => le(&mut c.uint64_contents.iter().map(|&v| v.to_le_bytes().to_vec())),
        "FP32" => le(&mut c.fp32_contents.iter().map(|&v| v.to_le_bytes().to_vec())),
        "FP64" => le(&mut c.fp64_contents.iter().map(|&v| v.to_le_bytes().to_vec())),
        "BYTES" => encode_bytes(&c.bytes_contents),
        other => {
            return Err(ServeError::bad(format!(
                "input '{name}': datatype {other:?} cannot be given as typed contents"
            )));
        }
    })
}

/// A gRPC request in the transport-neutral form.
pub fn to_request(r: pb::ModelInferRequest) -> Result<InferRequest, ServeError> {
    let raw = r.raw_input_contents;
    if !raw.is_empty() && raw.len() != r.inputs.len() {
        return Err(ServeError::bad(format!(
            "{} raw_input_contents for {} inputs",
            raw.len(),
            r.inputs.len()
        )));
    }
    let mut inputs = Vec::with_capacity(r.inputs.len());
    for (i, t) in r.inputs.into_iter().enumerate() {
        let data = match (raw.get(i), &t.contents) {
            (Some(bytes), _) => bytes.clone(),
            (None, Some(c)) => contents_to_raw(&t.name, &t.datatype, c)?,
            (None, None) => {
                return Err(ServeError::bad(format!(
                    "input '{}' has no contents",
                    t.name
                )));
            }
        };
        inputs.push(InTensor {
            name: t.name,
            datatype: t.datatype,
            shape: t.shape,
            raw: data,
        });
    }
    let outputs = r
        .outputs
        .into_iter()
        .map(|o| OutputRequest {
            classification: int_param(o.parameters.get("classification")),
            name: o.name,
            binary: Some(true),
        })
        .collect();
    Ok(InferRequest {
        id: r.id,
        inputs,
        outputs,
        binary_output: true,
    })
}

fn tensor_meta(v: Vec<crate::model::TensorMeta>) -> Vec<TensorMetadata> {
    v.into_iter()
        .map(|t| TensorMetadata {
            name: t.name.into(),
            datatype: t.datatype.into(),
            shape: t.shape,
        })
        .collect()
}

#[tonic::async_trait]
impl GrpcInferenceService for Service {
    async fn server_live(
        &self,
        _: Request<pb::ServerLiveRequest>,
    ) -> Result<Response<pb::ServerLiveResponse>, Status> {
        Ok(Response::new(pb::ServerLiveResponse { live: true }))
    }

    async fn server_ready(
        &self,
        _: Request<pb::ServerReadyRequest>,
    ) -> Result<Response<pb::ServerReadyResponse>, Status> {
        Ok(Response::new(pb::ServerReadyResponse {
            ready: self.state.ready.load(Relaxed),
        }))
    }

    async fn model_ready(
        &self,
        r: Request<pb::ModelReadyRequest>,
    ) -> Result<Response<pb::ModelReadyResponse>, Status> {
        let r = r.into_inner();
        self.state.entry(&r.name, &r.version).map_err(status)?;
        Ok(Response::new(pb::ModelReadyResponse {
            ready: self.state.ready.load(Relaxed),
        }))
    }

    async fn server_metadata(
        &self,
        _: Request<pb::ServerMetadataRequest>,
    ) -> Result<Response<pb::ServerMetadataResponse>, Status> {
        Ok(Response::new(pb::ServerMetadataResponse {
            name: SERVER_NAME.into(),
            version: SERVER_VERSION.into(),
            extensions: crate::EXTENSIONS.iter().map(|s| s.to_string()).collect(),
        }))
    }

    async fn model_metadata(
        &self,
        r: Request<pb::ModelMetadataRequest>,
    ) -> Result<Response<pb::ModelMetadataResponse>, Status> {
        let r = r.into_inner();
        let m = &self.state.entry(&r.name, &r.version).map_err(status)?.model;
        Ok(Response::new(pb::ModelMetadataResponse {
            name: m.name.clone(),
            versions: vec![VERSION.into()],
            platform: m.platform().into(),
            inputs: tensor_meta(m.inputs()),
            outputs: tensor_meta(m.outputs()),
        }))
    }

    async fn model_infer(
        &self,
        r: Request<pb::ModelInferRequest>,
    ) -> Result<Response<pb::ModelInferResponse>, Status> {
        let r = r.into_inner();
        let (model, version) = (r.model_name.clone(), r.model_version.clone());
        let req = match to_request(r) {
            Ok(req) => req,
            Err(e) => {
                if let Ok(entry) = self.state.entry(&model, &version) {
                    entry.batcher.metrics.failure.fetch_add(1, Relaxed);
                }
                return Err(status(e));
            }
        };
        let id = req.id.clone();
        let outputs = self
            .state
            .infer(&model, &version, req)
            .await
            .map_err(status)?;
        let mut resp = pb::ModelInferResponse {
            model_name: model,
            model_version: VERSION.into(),
            id,
            ..Default::default()
        };
        for (t, _) in outputs {
            resp.outputs.push(InferOutputTensor {
                name: t.name,
                datatype: t.datatype.into(),
                shape: t.shape,
                ..Default::default()
            });
            resp.raw_output_contents.push(t.raw);
        }
        Ok(Response::new(resp))
    }
}
