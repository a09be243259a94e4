"""Publishing a corpus: statistics, the data card, the HTML report, training exports."""
