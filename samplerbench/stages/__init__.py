"""The cached stages of a run: where per-frame features come from (videos or a frame bank), decoding, fitting
samplers, checkpoints."""
