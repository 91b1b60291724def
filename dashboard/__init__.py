"""initlab's Streamlit dashboard: thin widgets over core/, charts built by pure functions."""
