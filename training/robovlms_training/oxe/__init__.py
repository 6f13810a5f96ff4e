"""Open X-Embodiment data for training: RLDS / TFDS builder directories (``rlds``), per-dataset conversions
and mixtures (``mixtures``), LeRobotDataset v3.0 directories (``lerobot_reader``) and streaming of weighted,
sharded sources too big for memory (``streaming``)."""
