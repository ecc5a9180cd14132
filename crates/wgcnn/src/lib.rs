//! wgcnn
