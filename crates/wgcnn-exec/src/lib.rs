//! wgcnn-exec
