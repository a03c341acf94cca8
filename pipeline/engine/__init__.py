"""Neural style transfer: VGG-19 weights and features, the losses, the optimisation, and the passes
over a whole repeat or one tile window.
"""
