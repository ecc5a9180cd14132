//! wgcnn-io
