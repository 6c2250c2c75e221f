"""Helper package for the unet-tutorial notebooks.

Each module has one job:

- ``config``: the profiles that size every run, and where data goes;
- ``versions``: checks the installed libraries against what the series needs;
- ``errors``: the exception raised for mistakes a user can fix, and the command lines' argument parser;
- ``synthetic``: generates microscopy-like cells with exact masks (offline, from a seed);
- ``datasets``: the embedded real nuclei (``nuclei()``), downloads (Oxford-IIIT Pet), and layouts as views;
- ``data``: loads a folder of images and masks, checked, as a fast ``tf.data`` pipeline;
- ``augment``: paired geometric and photometric augmentation, masks kept exact;
- ``model``: builds the UNet from small named blocks (``build_unet``);
- ``losses``: cross-entropy + Dice losses for binary and multi-class masks, with optional per-pixel weights;
- ``metrics``: Dice, IoU and pixel accuracy, pooled over all pixels, as Keras metrics and NumPy functions;
  nuclei counted one by one (matched at IoU >= 0.5: precision, recall, F1);
- ``instances``: instance labels (one number per nucleus) and what training takes from them: touching
  nuclei separated by a background line, the paper's border weights, a weighted ``tf.data`` pipeline;
- ``train``: compiles and fits the UNet with checkpoints that survive interruption; the command line;
- ``inference``: prediction on images of any size (overlap-tile) and at the training scale, masks from
  probabilities, export for serving (SavedModel, TensorFlow Lite);
- ``predict``: the command line that writes mask and overlay PNGs for a folder of images;
- ``viz``: figures of images, masks and predictions: overlays, error maps, rankings, confusion matrices.

The notebooks import what two of them (or the command line) share.
"""

__version__ = "0.1.0"
