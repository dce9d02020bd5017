"""Shared rooms: errors, options, console, files, formats, runtime, images, models, plotting."""
