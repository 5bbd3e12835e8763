//! The rush's timeline drawn as an SVG: throughput, latency and queues per simulated minute, fault windows shaded.
//!
//! Built on `plotters` with only its SVG backend: text is written as SVG `<text>` elements and its size is only
//! estimated for layout, so no font file is read, at build time or at run time.

use std::path::{Path, PathBuf};

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::timeline::{FaultWindow, Minute};

/// Width and height of the drawing, in pixels.
const CANVAS_SIZE_PIXELS: (u32, u32) = (1200, 900);
/// The narrowest a fault window is drawn, in simulated minutes, so that a restart of a few seconds still shows.
const MINIMUM_FAULT_WIDTH_MINUTES: f64 = 0.3;
/// Font family of every text; the SVG viewer picks the actual font.
const FONT_FAMILY: &str = "sans-serif";
/// Font size of tick labels and axis descriptions (plotters writes it to the SVG divided by 1.24).
const AXIS_FONT_SIZE: u32 = 15;
/// Headroom above the largest value of a panel, as a factor.
const Y_HEADROOM_FACTOR: f64 = 1.1;
/// Width of the plotted lines, in pixels.
const LINE_WIDTH_PIXELS: u32 = 2;

/// Colour of payments paid.
const PAID_COLOR: RGBColor = RGBColor(31, 119, 180);
/// Colour of payments that ended any other way.
const NOT_PAID_COLOR: RGBColor = RGBColor(214, 39, 40);
/// Colour of items scanned.
const ITEMS_COLOR: RGBColor = RGBColor(127, 127, 127);
/// Colour of the payment round trip's median.
const PAY_P50_COLOR: RGBColor = RGBColor(44, 160, 44);
/// Colour of the payment round trip's 99th percentile.
const PAY_P99_COLOR: RGBColor = RGBColor(148, 103, 189);
/// Colour of frame-to-scan's 99th percentile.
const SCAN_P99_COLOR: RGBColor = RGBColor(140, 86, 75);
/// Colour of the offline queue.
const QUEUE_COLOR: RGBColor = RGBColor(255, 127, 14);
/// Colour of the customers waiting in line.
const WAITING_COLOR: RGBColor = RGBColor(23, 190, 207);

/// Shading of a provider outage.
const OUTAGE_SHADE_COLOR: RGBColor = RGBColor(255, 90, 90);
/// Shading of a restart.
const RESTART_SHADE_COLOR: RGBColor = RGBColor(255, 170, 50);
/// Shading of any other fault.
const OTHER_FAULT_SHADE_COLOR: RGBColor = RGBColor(150, 150, 210);
/// Opacity of a fault window's shading.
const FAULT_SHADE_OPACITY: f64 = 0.25;

/// Why the timeline could not be drawn or written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// Plotters failed while drawing one part of the figure.
    #[error("drawing the timeline's {part} failed: {message}")]
    Drawing {
        /// The part being drawn: "title", "throughput panel", ...
        part: &'static str,
        /// The backend's message.
        message: String,
    },
    /// The finished SVG could not be written.
    #[error("writing the timeline SVG to {path}: {source}")]
    Write {
        /// Where the SVG was to go.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
}

/// A chart of one panel: simulated minutes across, the panel's quantity up.
type PanelChart<'area, 'buffer> = ChartContext<'area, SVGBackend<'buffer>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// One panel's drawing area.
type PanelArea<'buffer> = DrawingArea<SVGBackend<'buffer>, plotters::coord::Shift>;

/// A fault window ready to draw: clamped to the x axis, at least the minimum width, with its shading colour.
struct ShadedWindow {
    /// What went wrong, for the legend.
    kind: String,
    /// Start, in simulated minutes.
    start_minutes: f64,
    /// End, in simulated minutes.
    end_minutes: f64,
    /// Shading colour, before opacity.
    color: RGBColor,
    /// Whether this window carries the legend entry of its kind (the first window of each kind does).
    labelled: bool,
}

/// Draws the rush's timeline — throughput, latency, offline queue and customers waiting per simulated minute, with
/// the fault windows shaded — and writes it as an SVG to `path`.
///
/// The x axis runs from 0 to `duration_s` in simulated minutes (stretched to cover every minute given). Rates are
/// plotted at the middle of their minute, the queue and the line at its end. Missing and non-finite values are
/// left out: a latency line breaks where a minute has none. Empty `minutes` and no `faults` draw empty panels.
pub fn write_svg(
    path: &Path,
    title: &str,
    minutes: &[Minute],
    faults: &[FaultWindow],
    duration_s: f64,
) -> Result<(), PlotError> {
    let mut svg_text = String::new();
    render_svg(&mut svg_text, title, minutes, faults, duration_s)?;
    std::fs::write(path, svg_text).map_err(|source| PlotError::Write { path: path.to_path_buf(), source })
}

/// Draws the whole figure into `svg_text`.
fn render_svg(
    svg_text: &mut String,
    title: &str,
    minutes: &[Minute],
    faults: &[FaultWindow],
    duration_s: f64,
) -> Result<(), PlotError> {
    let root = SVGBackend::with_string(svg_text, CANVAS_SIZE_PIXELS).into_drawing_area();
    root.fill(&WHITE).map_err(|error| drawing_error("background", error))?;
    let panels_area =
        root.titled(title, (FONT_FAMILY, 26).into_font()).map_err(|error| drawing_error("title", error))?;
    let panels = panels_area.split_evenly((3, 1));

    let x_max_minutes = x_axis_end_minutes(minutes, duration_s);
    let shaded_windows = shaded_fault_windows(faults, x_max_minutes);

    if let [throughput_area, latency_area, queue_area] = panels.as_slice() {
        draw_throughput_panel(throughput_area, minutes, &shaded_windows, x_max_minutes)
            .map_err(|error| drawing_error("throughput panel", error))?;
        draw_latency_panel(latency_area, minutes, &shaded_windows, x_max_minutes)
            .map_err(|error| drawing_error("latency panel", error))?;
        draw_queue_panel(queue_area, minutes, &shaded_windows, x_max_minutes)
            .map_err(|error| drawing_error("queue panel", error))?;
    }
    root.present().map_err(|error| drawing_error("finished figure", error))
}

/// Wraps a plotters error with the part that was being drawn.
fn drawing_error(part: &'static str, error: impl std::fmt::Display) -> PlotError {
    PlotError::Drawing { part, message: error.to_string() }
}

/// The error plotters returns while drawing on the SVG backend.
type SvgDrawingError = DrawingAreaErrorKind<<SVGBackend<'static> as DrawingBackend>::ErrorType>;

/// Panel 1: payments paid and not paid per minute, items per minute on a secondary axis.
fn draw_throughput_panel(
    area: &PanelArea<'_>,
    minutes: &[Minute],
    shaded_windows: &[ShadedWindow],
    x_max_minutes: f64,
) -> Result<(), SvgDrawingError> {
    let paid_points: Vec<(f64, Option<f64>)> =
        minutes.iter().map(|minute| (middle_of_minute(minute), Some(minute.paid as f64))).collect();
    let not_paid_points: Vec<(f64, Option<f64>)> =
        minutes.iter().map(|minute| (middle_of_minute(minute), Some(minute.not_paid as f64))).collect();
    let items_points: Vec<(f64, Option<f64>)> =
        minutes.iter().map(|minute| (middle_of_minute(minute), Some(minute.items as f64))).collect();

    let payments_y_max = y_axis_end([&paid_points, &not_paid_points]);
    let items_y_max = y_axis_end([&items_points]);

    let mut chart = ChartBuilder::on(area)
        .caption("Throughput", (FONT_FAMILY, 18).into_font())
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .right_y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max_minutes, 0.0..payments_y_max)?
        .set_secondary_coord(0.0..x_max_minutes, 0.0..items_y_max);
    chart
        .configure_mesh()
        .light_line_style(WHITE.mix(0.0))
        .label_style((FONT_FAMILY, AXIS_FONT_SIZE))
        .axis_desc_style((FONT_FAMILY, AXIS_FONT_SIZE))
        .y_desc("payments per minute")
        .x_label_formatter(&|value| format_tick(*value))
        .y_label_formatter(&|value| format_tick(*value))
        .draw()?;
    chart
        .configure_secondary_axes()
        .label_style((FONT_FAMILY, AXIS_FONT_SIZE))
        .axis_desc_style((FONT_FAMILY, AXIS_FONT_SIZE))
        .y_desc("items per minute")
        .y_label_formatter(&|value| format_tick(*value))
        .draw()?;

    shade_fault_windows(&mut chart, shaded_windows, payments_y_max)?;
    draw_broken_line(&mut chart, &paid_points, PAID_COLOR, "paid")?;
    draw_broken_line(&mut chart, &not_paid_points, NOT_PAID_COLOR, "not paid")?;

    let items_runs = runs_of_present_points(&items_points);
    let items_style = ITEMS_COLOR.mix(0.8).stroke_width(1);
    chart
        .draw_secondary_series(
            items_runs.iter().filter(|run| run.len() >= 2).map(|run| PathElement::new(run.clone(), items_style)),
        )?
        .label("items (right axis)")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], items_style));
    chart.draw_secondary_series(
        items_runs.iter().filter(|run| run.len() == 1).map(|run| Circle::new(run[0], 2, items_style.filled())),
    )?;

    draw_legend(&mut chart)
}

/// Panel 2: payment round trip p50 and p99 and frame-to-scan p99 per minute, in milliseconds.
fn draw_latency_panel(
    area: &PanelArea<'_>,
    minutes: &[Minute],
    shaded_windows: &[ShadedWindow],
    x_max_minutes: f64,
) -> Result<(), SvgDrawingError> {
    let pay_p50_points: Vec<(f64, Option<f64>)> =
        minutes.iter().map(|minute| (middle_of_minute(minute), minute.pay_p50_ms)).collect();
    let pay_p99_points: Vec<(f64, Option<f64>)> =
        minutes.iter().map(|minute| (middle_of_minute(minute), minute.pay_p99_ms)).collect();
    let scan_p99_points: Vec<(f64, Option<f64>)> =
        minutes.iter().map(|minute| (middle_of_minute(minute), minute.scan_p99_ms)).collect();
    let latency_y_max = y_axis_end([&pay_p50_points, &pay_p99_points, &scan_p99_points]);

    let mut chart = ChartBuilder::on(area)
        .caption("Latency", (FONT_FAMILY, 18).into_font())
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .right_y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max_minutes, 0.0..latency_y_max)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE.mix(0.0))
        .label_style((FONT_FAMILY, AXIS_FONT_SIZE))
        .axis_desc_style((FONT_FAMILY, AXIS_FONT_SIZE))
        .y_desc("milliseconds (wall time)")
        .x_label_formatter(&|value| format_tick(*value))
        .y_label_formatter(&|value| format_tick(*value))
        .draw()?;

    shade_fault_windows(&mut chart, shaded_windows, latency_y_max)?;
    draw_broken_line(&mut chart, &pay_p50_points, PAY_P50_COLOR, "pay round trip p50")?;
    draw_broken_line(&mut chart, &pay_p99_points, PAY_P99_COLOR, "pay round trip p99")?;
    draw_broken_line(&mut chart, &scan_p99_points, SCAN_P99_COLOR, "frame to scan p99")?;
    draw_legend(&mut chart)
}

/// Panel 3: the offline queue and the customers waiting in line at the end of each minute.
fn draw_queue_panel(
    area: &PanelArea<'_>,
    minutes: &[Minute],
    shaded_windows: &[ShadedWindow],
    x_max_minutes: f64,
) -> Result<(), SvgDrawingError> {
    let queue_points: Vec<(f64, Option<f64>)> =
        minutes.iter().map(|minute| (end_of_minute(minute), Some(minute.queue as f64))).collect();
    let waiting_points: Vec<(f64, Option<f64>)> =
        minutes.iter().map(|minute| (end_of_minute(minute), Some(minute.waiting as f64))).collect();
    let queue_y_max = y_axis_end([&queue_points, &waiting_points]);

    let mut chart = ChartBuilder::on(area)
        .caption("Offline queue and line", (FONT_FAMILY, 18).into_font())
        .margin(8)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .right_y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max_minutes, 0.0..queue_y_max)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE.mix(0.0))
        .label_style((FONT_FAMILY, AXIS_FONT_SIZE))
        .axis_desc_style((FONT_FAMILY, AXIS_FONT_SIZE))
        .x_desc("simulated time (minutes)")
        .y_desc("sales / customers")
        .x_label_formatter(&|value| format_tick(*value))
        .y_label_formatter(&|value| format_tick(*value))
        .draw()?;

    shade_fault_windows(&mut chart, shaded_windows, queue_y_max)?;
    draw_broken_line(&mut chart, &queue_points, QUEUE_COLOR, "offline queue (sales held + charges unsettled)")?;
    draw_broken_line(&mut chart, &waiting_points, WAITING_COLOR, "customers waiting in line")?;
    draw_legend(&mut chart)
}

/// Shades every fault window from the bottom of the panel to `y_max`, behind what is drawn afterwards.
fn shade_fault_windows(
    chart: &mut PanelChart<'_, '_>,
    shaded_windows: &[ShadedWindow],
    y_max: f64,
) -> Result<(), SvgDrawingError> {
    for window in shaded_windows {
        let shade_style = window.color.mix(FAULT_SHADE_OPACITY).filled();
        let rectangle = Rectangle::new([(window.start_minutes, 0.0), (window.end_minutes, y_max)], shade_style);
        let annotation = chart.draw_series(std::iter::once(rectangle))?;
        if window.labelled {
            annotation
                .label(window.kind.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], shade_style));
        }
    }
    Ok(())
}

/// Draws one series as a line broken where values are missing, with a dot for a value alone between gaps, and
/// gives it a legend entry (even when it has no values, so the legend always lists the panel's series).
fn draw_broken_line(
    chart: &mut PanelChart<'_, '_>,
    points: &[(f64, Option<f64>)],
    color: RGBColor,
    label: &str,
) -> Result<(), SvgDrawingError> {
    let runs = runs_of_present_points(points);
    let line_style = color.stroke_width(LINE_WIDTH_PIXELS);
    chart
        .draw_series(runs.iter().filter(|run| run.len() >= 2).map(|run| PathElement::new(run.clone(), line_style)))?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], line_style));
    chart
        .draw_series(runs.iter().filter(|run| run.len() == 1).map(|run| Circle::new(run[0], 3, line_style.filled())))?;
    Ok(())
}

/// Draws the panel's legend in its upper right corner.
fn draw_legend<'area, 'buffer: 'area>(chart: &mut PanelChart<'area, 'buffer>) -> Result<(), SvgDrawingError> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK.mix(0.4))
        .label_font((FONT_FAMILY, 13).into_font())
        .draw()
}

/// Splits a series into runs of consecutive present, finite values.
fn runs_of_present_points(points: &[(f64, Option<f64>)]) -> Vec<Vec<(f64, f64)>> {
    let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current_run: Vec<(f64, f64)> = Vec::new();
    for &(x, value) in points {
        match value.filter(|value| value.is_finite() && x.is_finite()) {
            Some(value) => current_run.push((x, value)),
            None if !current_run.is_empty() => runs.push(std::mem::take(&mut current_run)),
            None => {}
        }
    }
    if !current_run.is_empty() {
        runs.push(current_run);
    }
    runs
}

/// The top of a panel's y axis: the largest finite value of its series with headroom, at least 1.
fn y_axis_end<const SERIES_COUNT: usize>(series: [&[(f64, Option<f64>)]; SERIES_COUNT]) -> f64 {
    let largest_value = series
        .iter()
        .flat_map(|points| points.iter())
        .filter_map(|&(_, value)| value)
        .filter(|value| value.is_finite())
        .fold(0.0_f64, f64::max);
    (largest_value * Y_HEADROOM_FACTOR).max(1.0)
}

/// The end of the x axis, in simulated minutes: the rush's duration, stretched to cover every minute given, at
/// least one minute.
fn x_axis_end_minutes(minutes: &[Minute], duration_s: f64) -> f64 {
    let duration_minutes = if duration_s.is_finite() { duration_s / 60.0 } else { 0.0 };
    let last_minute_end = minutes.iter().map(end_of_minute).fold(0.0_f64, f64::max);
    duration_minutes.max(last_minute_end).max(1.0)
}

/// Where a per-minute rate is plotted: the middle of its minute, in simulated minutes.
fn middle_of_minute(minute: &Minute) -> f64 {
    minute.t_s as f64 / 60.0 + 0.5
}

/// Where an end-of-minute state is plotted: the end of its minute, in simulated minutes.
fn end_of_minute(minute: &Minute) -> f64 {
    minute.t_s as f64 / 60.0 + 1.0
}

/// A tick label: whole numbers without decimals, others with as few as tell neighbouring ticks apart.
fn format_tick(value: f64) -> String {
    if (value - value.round()).abs() < 1e-9 {
        format!("{value:.0}")
    } else if (value * 10.0 - (value * 10.0).round()).abs() < 1e-9 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// The fault windows in simulated minutes, clamped to the x axis and at least the minimum width; windows with a
/// non-finite bound are left out.
fn shaded_fault_windows(faults: &[FaultWindow], x_max_minutes: f64) -> Vec<ShadedWindow> {
    let mut kinds_labelled: Vec<&str> = Vec::new();
    let mut shaded_windows = Vec::new();
    for fault in faults {
        if !fault.start_s.is_finite() || !fault.end_s.is_finite() {
            continue;
        }
        let start_minutes = fault.start_s.min(fault.end_s) / 60.0;
        let end_minutes = fault.start_s.max(fault.end_s) / 60.0;
        let (start_minutes, end_minutes) = if end_minutes - start_minutes < MINIMUM_FAULT_WIDTH_MINUTES {
            let middle_minutes = (start_minutes + end_minutes) / 2.0;
            let half_width_minutes = MINIMUM_FAULT_WIDTH_MINUTES / 2.0;
            (middle_minutes - half_width_minutes, middle_minutes + half_width_minutes)
        } else {
            (start_minutes, end_minutes)
        };
        let start_minutes = start_minutes.clamp(0.0, x_max_minutes);
        let end_minutes = end_minutes.clamp(0.0, x_max_minutes);
        if end_minutes <= start_minutes {
            continue;
        }
        let labelled = !kinds_labelled.contains(&fault.kind.as_str());
        if labelled {
            kinds_labelled.push(&fault.kind);
        }
        shaded_windows.push(ShadedWindow {
            kind: fault.kind.clone(),
            start_minutes,
            end_minutes,
            color: fault_shade_color(&fault.kind),
            labelled,
        });
    }
    shaded_windows
}

/// The shading colour of a fault kind: red for an outage, orange for a restart, blue-grey for anything else.
fn fault_shade_color(kind: &str) -> RGBColor {
    let kind = kind.to_ascii_lowercase();
    if kind.contains("outage") {
        OUTAGE_SHADE_COLOR
    } else if kind.contains("restart") {
        RESTART_SHADE_COLOR
    } else {
        OTHER_FAULT_SHADE_COLOR
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file in the system's temporary directory, unique to this process and test, removed when dropped.
    struct TemporarySvgFile {
        /// Where the SVG goes.
        path: PathBuf,
    }

    impl TemporarySvgFile {
        /// Names a fresh file for `test_name`.
        fn new(test_name: &str) -> Self {
            let path = std::env::temp_dir().join(format!("checkout-rush-plot-{}-{test_name}.svg", std::process::id()));
            Self { path }
        }
    }

    impl Drop for TemporarySvgFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    /// Sixty synthetic minutes: steady sales, a provider outage from minute 20 to 25 where payments stop and the
    /// queue grows, and pay latency missing for the outage's minutes.
    fn synthetic_minutes() -> Vec<Minute> {
        (0..60_u64)
            .map(|index| {
                let in_outage = (20..25).contains(&index);
                Minute {
                    t_s: index * 60,
                    paid: if in_outage { 0 } else { 40 + index % 7 },
                    not_paid: if in_outage { 6 } else { index % 3 },
                    items: 600 + index * 5,
                    pay_p50_ms: if in_outage { None } else { Some(120.0 + index as f64) },
                    pay_p99_ms: if in_outage { None } else { Some(400.0 + 3.0 * index as f64) },
                    scan_p50_ms: Some(15.0),
                    scan_p99_ms: if index == 40 { Some(f64::NAN) } else { Some(35.0 + (index % 5) as f64) },
                    queue: if in_outage { (index - 19) * 30 } else { 2 },
                    waiting: if in_outage { 10 + index } else { 4 },
                }
            })
            .collect()
    }

    /// A five-minute provider outage and two short restarts.
    fn synthetic_faults() -> Vec<FaultWindow> {
        vec![
            FaultWindow { kind: "provider outage".to_owned(), start_s: 1200.0, end_s: 1500.0 },
            FaultWindow { kind: "coordinator restart".to_owned(), start_s: 2100.0, end_s: 2104.0 },
            FaultWindow { kind: "coordinator restart".to_owned(), start_s: 3000.0, end_s: 3002.5 },
        ]
    }

    #[test]
    fn writes_an_svg_with_title_shading_and_legend() {
        let file = TemporarySvgFile::new("full");
        let title = "Busy hour: 8 lanes & provider outage";
        write_svg(&file.path, title, &synthetic_minutes(), &synthetic_faults(), 3600.0).expect("SVG written");

        let svg = std::fs::read_to_string(&file.path).expect("SVG readable");
        let svg = svg.trim();
        assert!(svg.starts_with("<svg"), "starts with: {}", &svg[..svg.len().min(80)]);
        assert!(svg.ends_with("</svg>"));
        assert!(svg.contains("Busy hour: 8 lanes &amp; provider outage"), "title present and escaped");
        assert!(svg.contains("<rect"), "fault shading present");
        assert!(svg.contains("<text"), "text drawn as SVG text");
        for label in ["paid", "not paid", "pay round trip p99", "frame to scan p99", "customers waiting in line"] {
            assert!(svg.contains(&format!("\n{label}\n</text>")), "legend entry {label}");
        }
        assert!(svg.contains("provider outage"));
        assert!(svg.contains("coordinator restart"));
        assert!(svg.contains("simulated time (minutes)"));
    }

    #[test]
    fn writes_empty_axes_without_minutes_or_faults() {
        let file = TemporarySvgFile::new("empty");
        write_svg(&file.path, "Empty rush", &[], &[], 0.0).expect("SVG written");

        let svg = std::fs::read_to_string(&file.path).expect("SVG readable");
        let svg = svg.trim();
        assert!(svg.starts_with("<svg"));
        assert!(svg.ends_with("</svg>"));
        assert!(svg.contains("Empty rush"));
    }

    #[test]
    fn survives_non_finite_duration_and_fault_bounds() {
        let file = TemporarySvgFile::new("non-finite");
        let faults = vec![
            FaultWindow { kind: "provider outage".to_owned(), start_s: f64::NAN, end_s: 10.0 },
            FaultWindow { kind: "provider outage".to_owned(), start_s: 30.0, end_s: f64::INFINITY },
            FaultWindow { kind: "coordinator restart".to_owned(), start_s: 90.0, end_s: 60.0 },
            FaultWindow { kind: "coordinator restart".to_owned(), start_s: 1e9, end_s: 2e9 },
        ];
        let minutes = vec![Minute {
            pay_p50_ms: Some(f64::INFINITY),
            pay_p99_ms: Some(f64::NAN),
            scan_p99_ms: Some(-f64::INFINITY),
            ..Minute::default()
        }];
        write_svg(&file.path, "Odd input", &minutes, &faults, f64::NAN).expect("SVG written");
        let svg = std::fs::read_to_string(&file.path).expect("SVG readable");
        assert!(svg.trim().ends_with("</svg>"));
    }

    #[test]
    fn reports_the_path_when_the_file_cannot_be_written() {
        let path = std::env::temp_dir().join(format!("checkout-rush-plot-{}-missing-dir", std::process::id()));
        let path = path.join("timeline.svg");
        let error = write_svg(&path, "Nowhere", &[], &[], 60.0).expect_err("directory does not exist");
        assert!(matches!(&error, PlotError::Write { path: error_path, .. } if *error_path == path));
        assert!(error.to_string().contains("timeline.svg"));
    }

    #[test]
    fn restarts_get_a_visible_width_and_windows_are_clamped() {
        let windows = shaded_fault_windows(&synthetic_faults(), 60.0);
        assert_eq!(windows.len(), 3);
        assert!((windows[0].start_minutes - 20.0).abs() < 1e-9 && (windows[0].end_minutes - 25.0).abs() < 1e-9);
        assert!(windows[1].end_minutes - windows[1].start_minutes >= MINIMUM_FAULT_WIDTH_MINUTES - 1e-9);
        assert!(windows[0].labelled && windows[1].labelled && !windows[2].labelled);

        let beyond_the_axis = [FaultWindow { kind: "provider outage".to_owned(), start_s: 3000.0, end_s: 9000.0 }];
        let windows = shaded_fault_windows(&beyond_the_axis, 60.0);
        assert!((windows[0].end_minutes - 60.0).abs() < 1e-9);
    }
}
