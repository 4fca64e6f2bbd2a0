"""Infant pose models in plain PyTorch: box detector -> 2D heatmap model -> 3D lifter.

Python API (what the pipeline runner calls)::

    from pose_models.train import TrainConfig, train
    ckpt = train(TrainConfig.from_dict(yaml_dict))          # -> Path of the final checkpoint
    from pose_models.evaluate import evaluate
    metrics = evaluate(ckpt, "data/dataset_dir")              # -> JSON-serialisable dict
    from pose_models.predict import predict
    preds = predict(image_paths, detector=..., pose2d=..., lifter=...)

Importing this package does not import torch; the sub-modules do.
"""
