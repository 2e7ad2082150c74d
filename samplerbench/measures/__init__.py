"""Pure measures: metrics, paired statistics, score fusion, FLOP counts, motion, the top-K rule."""
