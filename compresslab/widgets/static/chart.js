// The browser side of compresslab's LiveFigure (an anywidget ES module).
//
// One chart = one <div> drawn by plotly.js. A slider move changes the model's `fig_data` (and only
// when it changed, `fig_layout`); this view then calls Plotly.react on the SAME div, which updates
// the existing plot in place instead of building a new one (the old chart, an Output widget, made
// JupyterLab's plotly renderer draw a whole new plot and a PNG copy of it on every move).
//
// plotly.js itself (4.8 MB) comes from ONE shared widget model per kernel (`_library`, a plain
// WidgetModel whose `source` is plotly.min.js from the Python plotly package): no network, no
// copy per chart, and it is evaluated once per page. Nothing here has a time limit: on a busy
// laptop a chart waits for plotly.js and then draws; if drawing fails, the view says so in words
// (a chart never stays blank without a reason).

const LOADED = (globalThis.__compresslabPlotly ??= {});

function libraryId(model) {
  const ref = model.get("_library") || "";
  return ref.startsWith("IPY_MODEL_") ? ref.slice("IPY_MODEL_".length) : ref;
}

async function plotlyFor(model) {
  const version = model.get("_plotly_version");
  if (!LOADED[version]) {
    LOADED[version] = (async () => {
      const library = await model.widget_manager.get_model(libraryId(model));
      const source = library.get("source");
      if (!source) throw new Error("the plotly.js library widget arrived empty");
      // let other widgets finish starting before the 4.8 MB script is evaluated
      await new Promise((resolve) => setTimeout(resolve, 0));
      const module = { exports: {} };
      // plotly.min.js is a UMD bundle: with `module` defined it exports itself there and touches no
      // global (`define` is shadowed so a page's require.js cannot capture it).
      new Function("module", "exports", "define", source)(module, module.exports, undefined);
      if (typeof module.exports.react !== "function") throw new Error("plotly.js did not load");
      return module.exports;
    })();
    LOADED[version].catch(() => delete LOADED[version]);  // a later chart may try again
  }
  return LOADED[version];
}

function fixedWidth(layout) {
  return typeof layout.width === "number" ? layout.width : null;
}

// Does any text of the chart (tick labels, titles, legend) reach outside its picture?
function overflows(box) {
  const svg = box.querySelector(".main-svg");
  if (!svg) return false;
  const frame = svg.getBoundingClientRect();
  for (const text of svg.querySelectorAll("text")) {
    const r = text.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (r.left < frame.left - 1 || r.right > frame.right + 1 || r.top < frame.top - 1 || r.bottom > frame.bottom + 1) {
      return true;
    }
  }
  return false;
}

async function render({ model, el }) {
  el.classList.add("compresslab-chart");
  const box = document.createElement("div");
  box.className = "compresslab-chart-plot";
  box.style.maxWidth = "100%";
  const note = document.createElement("div");
  note.className = "compresslab-chart-note";
  note.style.cssText = "font-size: 13px; color: #616161; padding: 4px 0;";
  note.textContent = model.get("_waiting_text") || "drawing chart…";
  el.appendChild(note);
  el.appendChild(box);

  let Plotly = null;
  let busy = false;
  let again = false;
  let drawn = 0;
  // The margins plotly chose the last time it laid the chart out itself. With automargin (every
  // compresslab chart has it) plotly draws, measures its labels and draws again whenever a label's
  // width changed: half of a slider move's drawing time. A move reuses these margins instead, and
  // the chart is laid out afresh only when some text would not fit in them.
  let margins = null;

  function sizeBox(layout) {
    const width = fixedWidth(layout);
    box.style.width = `${width ?? model.get("_default_width")}px`;
    box.style.height = `${typeof layout.height === "number" ? layout.height : 450}px`;
  }

  async function draw() {
    if (busy) {  // one draw at a time; the newest state wins
      again = true;
      return;
    }
    busy = true;
    try {
      do {
        again = false;
        if (!Plotly) Plotly = await plotlyFor(model);
        // copies: plotly writes computed values (ranges, uids) into what it is given
        const data = structuredClone(model.get("fig_data") || []);
        const layout = structuredClone(model.get("fig_layout") || {});
        layout.template = model.get("fig_template") || {};  // plotly only reads it
        sizeBox(layout);
        if (fixedWidth(layout) === null) layout.autosize = true;
        const started = performance.now();
        const config = model.get("_config") || {};
        if (margins) {
          const quick = { ...layout, margin: { ...(layout.margin || {}), ...margins, autoexpand: false } };
          await Plotly.react(box, data, quick, config);
        }
        let path = margins ? "quick" : "full";
        const checked = performance.now();
        const overflow = margins ? overflows(box) : true;
        box.dataset.checkMs = (performance.now() - checked).toFixed(1);
        if (overflow) {
          if (margins) path = "quick+full";
          await Plotly.react(box, structuredClone(data), layout, config);
          const size = box._fullLayout && box._fullLayout._size;
          margins = size ? { l: size.l, r: size.r, t: size.t, b: size.b } : null;
        }
        drawn += 1;
        box.dataset.drawMs = (performance.now() - started).toFixed(1);  // read by bench/bench_redraw.py
        box.dataset.drawPath = path;
        box.dataset.drawn = String(drawn);
        note.style.display = "none";
      } while (again);
    } catch (error) {
      note.style.display = "";
      note.style.color = "#b71c1c";
      const reason = error && error.message ? error.message : error;
      note.textContent = `${model.get("_failed_text") || "chart not drawn:"} ${reason}`;
    } finally {
      busy = false;
    }
  }

  // One state message can change several traits (data, layout, template): Backbone announces each
  // apart, synchronously; draw once, after the last of them.
  let scheduled = false;
  const redraw = () => {
    if (scheduled) return;
    scheduled = true;
    queueMicrotask(() => {
      scheduled = false;
      void draw();
    });
  };
  model.on("change:fig_data", redraw);
  model.on("change:fig_layout", redraw);
  model.on("change:fig_template", redraw);
  // The container may be narrower than the chart (a laptop, the file browser open): the plot
  // follows its box, which max-width keeps inside the page.
  const observer = new ResizeObserver(() => {
    if (Plotly && drawn) Plotly.Plots.resize(box);
  });
  observer.observe(box);
  void draw();
  return () => {
    observer.disconnect();
    if (Plotly) Plotly.purge(box);
  };
}

export default { render };
