"""Helper package for the unet-tutorial notebooks.

Each module has one job:

- ``config``: the profiles that size every run, and where data goes;
- ``versions``: checks the installed libraries against what the series needs;
- ``errors``: the exceptions for what a user can fix (a mistake) or do (resume after Ctrl-C);
- ``devices``: what the machine has, and how training uses it: GPUs, mixed precision, XLA, strategies;
- ``synthetic``: generates microscopy-like cells with exact masks (offline, from a seed);
- ``datasets``: the embedded real nuclei (``nuclei()``), downloads (Oxford-IIIT Pet), and layouts as views;
- ``images``: reads image and mask files, in Python to check them and in the ``tf.data`` graph the same way;
- ``mask_classes``: turns the values mask files store into class indices (or "ignore"), every value checked;
- ``pairing``: pairs image files with their mask files: same name, a suffix, a pattern, or a list;
- ``scan_cache``: checks every pair once, with the result cached on disk next to the data;
- ``splits``: which pairs train, validate and test: a seeded split, the dataset's own, a seeded subset;
- ``data``: loads a folder of images and masks, checked, as a fast ``tf.data`` pipeline;
- ``augment``: paired geometric and photometric augmentation, masks kept exact;
- ``augment_layer``: the same augmentation as a Keras layer, to augment on the accelerator;
- ``model``: builds the UNet from small named blocks (``build_unet``), and loads a trained one;
- ``losses``: cross-entropy + Dice losses for binary and multi-class masks, per-pixel weights, ignored pixels;
- ``metrics``: Dice, IoU and pixel accuracy, pooled over all pixels, as Keras metrics and NumPy functions;
  the per-pixel numbers figures draw (error maps, Dice per image, Dice per threshold, confusion matrices);
- ``instance_metrics``: nuclei counted one by one (matched at IoU >= 0.5: precision, recall, F1);
- ``instances``: instance labels (one number per nucleus) and what training takes from them: touching
  nuclei separated by a background line, the paper's border weights, a weighted ``tf.data`` pipeline;
- ``training``: compiles and fits the UNet with callbacks that survive interruption (``train_unet``);
- ``run_folder``: a run's output folder: what is finished, restoring it, the record, the report;
- ``train``: the training command line (``python -m unet_helpers.train``);
- ``inference``: prediction on images of any size (overlap-tile) and at the training scale, masks from
  probabilities;
- ``export``: a trained model exported for serving (SavedModel, TensorFlow Lite) and loaded back;
- ``predict``: the command line that writes mask and overlay PNGs for a folder of images;
- ``cli``: what the command lines share: a parser whose mistakes are one line, numeric argument types;
- ``viz``: figures, and only figures, of data, the network, predictions and scores (a package of one
  module per kind of figure; the numbers come from ``metrics``).

The notebooks import what two of them (or the command line) share.
"""

__version__ = "0.1.0"
