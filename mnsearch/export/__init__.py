"""Export of trained trials: spec, weights, ONNX/StableHLO (verified), model card;
`load` reads an export folder back.
"""
