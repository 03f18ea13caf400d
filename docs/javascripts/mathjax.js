// MathJax 3 (served from this site, see the Makefile): $...$ and $$...$$ in the tutorials' markdown cells,
// \(...\) and \[...\] from pymdownx.arithmatex on the other pages. Code blocks are skipped (skipHtmlTags).
window.MathJax = {
  tex: { inlineMath: [["\\(", "\\)"], ["$", "$"]], displayMath: [["\\[", "\\]"], ["$$", "$$"]], processEscapes: true },
  options: { ignoreHtmlClass: "tex2jax_ignore", processHtmlClass: "tex2jax_process|arithmatex|jp-RenderedMarkdown" }
};
