//! Evaluation of detections against labels (work in progress).
