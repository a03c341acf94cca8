"""Reading what a studio asks for: manifest and catalogue values, settings layers, output sizes,
and the input image files, with every problem named by file, job and field.
"""
