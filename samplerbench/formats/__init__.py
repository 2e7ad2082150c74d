"""What a run keeps on disk: the stage cache, the frame store, frame banks, run folders, exported selections."""
