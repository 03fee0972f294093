"""SMTP providers: kinds and presets, encrypted secrets, transports and sending limits."""
