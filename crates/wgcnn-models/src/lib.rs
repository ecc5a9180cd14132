//! wgcnn-models
