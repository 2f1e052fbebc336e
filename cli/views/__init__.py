"""Views of a replay: each takes decision records in and gives a result out."""
