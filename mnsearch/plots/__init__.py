"""Figures (plotly) and the HTML report: each figure's data is a pure function over
results frames, drawn by a thin plotly function; the report and the dashboard share them.
"""
