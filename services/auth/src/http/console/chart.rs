//! Bar charts drawn on the server as SVG (no script, no inline style: presentation
//! attributes only, which the CSP allows), each with its numbers as a table beside it for
//! screen readers and for reading exact values.

use maud::{Markup, html};

/// Width and height of the drawing, in SVG units (it scales to its box).
const WIDTH: i64 = 600;
const HEIGHT: i64 = 120;

/// One bar: its label (a day) and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bar {
    /// What the bar is for, e.g. `2026-12-06`.
    pub(crate) label: String,
    /// Its value (0 or more).
    pub(crate) value: i64,
}

/// Bar heights scaled so the largest value fills the drawing (all 0 when every value is).
fn heights(bars: &[Bar]) -> Vec<i64> {
    let max = bars.iter().map(|b| b.value.max(0)).max().unwrap_or(0);
    bars.iter()
        .map(|b| {
            if max == 0 {
                0
            } else {
                // i128: a value times the height cannot overflow.
                (i128::from(b.value.max(0)) * i128::from(HEIGHT) / i128::from(max)) as i64
            }
        })
        .collect()
}

/// A titled bar chart of `bars`, oldest first.
pub(crate) fn bar_chart(id: &str, title: &str, bars: &[Bar]) -> Markup {
    let count = i64::try_from(bars.len()).unwrap_or(i64::MAX).max(1);
    let slot = WIDTH / count;
    let width = (slot - 2).max(1);
    let heights = heights(bars);
    let total: i64 = bars.iter().map(|b| b.value).sum();
    html! {
        figure class="chart" {
            figcaption id={ (id) "-title" } { (title) }
            svg viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } width="100%" height="120"
                preserveAspectRatio="none" role="img" aria-labelledby={ (id) "-title" } {
                @for (i, (bar, height)) in bars.iter().zip(&heights).enumerate() {
                    rect x=(i64::try_from(i).unwrap_or(0) * slot) y=(HEIGHT - height)
                        width=(width) height=(height) fill="#0550ae" {
                        title { (bar.label) ": " (bar.value) }
                    }
                }
                line x1="0" y1=(HEIGHT) x2=(WIDTH) y2=(HEIGHT) stroke="#57606a" stroke-width="1" {}
            }
            details {
                summary { "As a table (" (total) " in all)" }
                table {
                    thead { tr { th scope="col" { "Day" } th scope="col" { "Value" } } }
                    tbody {
                        @for bar in bars {
                            tr { td { (bar.label) } td { (bar.value) } }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(value: i64) -> Bar {
        Bar {
            label: "d".into(),
            value,
        }
    }

    #[test]
    fn the_largest_bar_fills_the_height_and_the_others_scale() {
        assert_eq!(heights(&[bar(0), bar(5), bar(10)]), [0, HEIGHT / 2, HEIGHT]);
    }

    #[test]
    fn all_zero_or_no_bars_draw_nothing_and_do_not_divide_by_zero() {
        assert_eq!(heights(&[bar(0), bar(0)]), [0, 0]);
        assert!(heights(&[]).is_empty());
        let markup = bar_chart("c", "Empty", &[]).into_string();
        assert!(markup.contains("Empty"));
    }

    #[test]
    fn huge_values_do_not_overflow() {
        assert_eq!(
            heights(&[bar(i64::MAX), bar(i64::MAX / 2)]),
            [HEIGHT, HEIGHT / 2 - 1]
        );
    }
}
