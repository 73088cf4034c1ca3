"""The static site: pages, charts, images and themes. Torch-free by rule (a test imports it with torch blocked)."""
