"""The Streamlit app (``rag ui``): collections, uploads, and chat with sources."""
