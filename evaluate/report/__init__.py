"""Report writers: Markdown, JSON, HTML (template), charts, wording shared by report and card."""
