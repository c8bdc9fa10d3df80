//! The plots: writer latency CDFs and recall/QPS curves (SVG).

use std::path::Path;

use plotters::prelude::*;

use super::Error;
use crate::writers;

/// A (recall, QPS) curve of one system on one dataset.
pub(super) struct Curve {
    pub(super) label: String,
    pub(super) points: Vec<(f64, f64)>,
}

pub(super) const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Draws the series' labels in a box at `position`.
pub(super) fn legend<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<(), Error>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    CT: plotters::coord::CoordTranslate,
{
    chart.configure_series_labels().position(position).background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    Ok(())
}

/// A legend entry: a short line in the series' color.
pub(super) fn swatch(color: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
}

/// Writer latency against "nines" (x = -log10(1 - quantile)), log latency.
pub(super) fn plot_cdf(runs: &[writers::Run], path: &Path) -> Result<(), Error> {
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let max_us = runs.iter().map(|r| r.latency.max_us).fold(10.0, f64::max) * 1.5;
    let mut chart = ChartBuilder::on(&root)
        .caption("add_chunk latency, with and without a persist loop", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..4.2f64, (0.1f64..max_us).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("quantile")
        .y_desc("latency (µs)")
        .x_label_formatter(&|x| match x.round() as i32 {
            0 => "0".into(),
            1 => "90%".into(),
            2 => "99%".into(),
            3 => "99.9%".into(),
            4 => "99.99%".into(),
            _ => String::new(),
        })
        .x_labels(5)
        .draw()?;
    for (i, run) in runs.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let points: Vec<(f64, f64)> =
            run.cdf.iter().filter(|p| p.1 < 0.99995).map(|&(us, q)| (-(1.0 - q).log10(), us.max(0.1))).collect();
        let label = format!("{} {}", run.design, if run.persist { "with persist" } else { "without persist" });
        let style = if run.persist { color.stroke_width(2) } else { color.stroke_width(1) };
        chart.draw_series(LineSeries::new(points, style))?.label(label).legend(swatch(color));
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    root.present()?;
    Ok(())
}

/// QPS (log) against recall@10 for every system on one dataset.
pub(super) fn plot_recall(curves: &[Curve], title: &str, path: &Path) -> Result<(), Error> {
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let all: Vec<(f64, f64)> = curves.iter().flat_map(|c| c.points.iter().copied()).collect();
    let min_recall = all.iter().map(|p| p.0).fold(1.0, f64::min).min(0.8) - 0.02;
    let max_qps = all.iter().map(|p| p.1).fold(1.0, f64::max) * 2.0;
    let min_qps = all.iter().map(|p| p.1).fold(f64::MAX, f64::min).max(0.1) / 2.0;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(min_recall..1.005f64, (min_qps..max_qps).log_scale())?;
    chart.configure_mesh().x_desc("recall@10").y_desc("queries per second, one at a time, 1 thread").draw()?;
    for (i, curve) in curves.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let width = if curve.label.starts_with("vecindex") { 3 } else { 1 };
        chart
            .draw_series(LineSeries::new(curve.points.clone(), color.stroke_width(width)))?
            .label(curve.label.clone())
            .legend(swatch(color));
        chart.draw_series(curve.points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    legend(&mut chart, SeriesLabelPosition::LowerLeft)?;
    root.present()?;
    Ok(())
}

/// QPS (at a fixed recall) against rows, both axes logarithmic.
pub(super) fn plot_scaling(curves: &[Curve], title: &str, path: &Path) -> Result<(), Error> {
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let all: Vec<(f64, f64)> = curves.iter().flat_map(|c| c.points.iter().copied()).collect();
    let min_rows = all.iter().map(|p| p.0).fold(f64::MAX, f64::min).max(1.0) / 1.5;
    let max_rows = all.iter().map(|p| p.0).fold(1.0, f64::max) * 1.5;
    let max_qps = all.iter().map(|p| p.1).fold(1.0, f64::max) * 2.0;
    let min_qps = all.iter().map(|p| p.1).fold(f64::MAX, f64::min).max(0.1) / 2.0;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((min_rows..max_rows).log_scale(), (min_qps..max_qps).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("rows ingested")
        .y_desc("QPS at recall@10 >= 0.95, one at a time, 1 thread")
        .draw()?;
    for (i, curve) in curves.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(curve.points.clone(), color.stroke_width(2)))?
            .label(curve.label.clone())
            .legend(swatch(color));
        chart.draw_series(curve.points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    legend(&mut chart, SeriesLabelPosition::LowerLeft)?;
    root.present()?;
    Ok(())
}
