//! Unit tests of `metrics`.

use super::*;

#[test]
fn histogram_buckets_are_inclusive_and_cumulative_in_output() {
    let h = AtomicHistogram::new(1.0, &[0, 1, 4]);
    for v in [0, 1, 2, 4, 5, 100] {
        h.observe(v);
    }
    let (buckets, count) = h.snapshot();
    assert_eq!(count, 6);
    assert_eq!(
        buckets,
        vec![(0.0, 1), (1.0, 1), (4.0, 2), (f64::INFINITY, 2)]
    );
    let mut registry = Registry::default();
    registry.register("h", "test", h);
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
    assert!(out.contains("h_bucket{le=\"4.0\"} 4\n"), "{out}");
    assert!(out.contains("h_bucket{le=\"+Inf\"} 6\n"), "{out}");
    assert!(out.contains("h_count 6\n"), "{out}");
    assert!(out.contains("h_sum 112.0\n"), "{out}");
}

#[test]
fn every_metric_is_rendered() {
    let m = get();
    m.disconnect(1000);
    let out = m.render();
    for name in [
        "wschat_build_info{version=",
        "wschat_connections{mode=\"raw\"}",
        "wschat_connections{mode=\"v1\"}",
        "wschat_connections{mode=\"echo\"}",
        "wschat_rooms ",
        "wschat_messages_received_total{kind=\"join\"}",
        "wschat_rate_limited_total ",
        "wschat_deliveries_total ",
        "wschat_bytes_received_total ",
        "wschat_bytes_sent_total ",
        "wschat_handshakes_refused_total{reason=\"origin\"}",
        "wschat_disconnects_total{code=\"1000\"}",
        "wschat_slow_consumer_evictions_total ",
        "wschat_outbound_queue_depth_bucket{le=\"0.0\"}",
        "wschat_fanout_duration_seconds_bucket{le=\"0.00001\"}",
    ] {
        assert!(out.contains(name), "{name} missing from:\n{out}");
    }
    assert!(m.render_openmetrics().ends_with("# EOF\n"));
}

#[test]
fn close_codes_fall_into_a_bounded_set() {
    assert_eq!(close_class(1000), "1000");
    assert_eq!(close_class(1013), "1013");
    for chosen in [0, 999, 1004, 1016, 2999, 3000, 4000, 4999, 65535] {
        assert_eq!(close_class(chosen), "other", "{chosen}");
    }
}

#[test]
fn text_format_names_families_by_their_samples() {
    let om = "# HELP x_c Things.\n# TYPE x_c counter\nx_c_total 1\n\
              # HELP x_b Build.\n# TYPE x_b info\nx_b_info{v=\"1\"} 1\n\
              # HELP x_s_seconds Time.\n# TYPE x_s_seconds histogram\n# UNIT x_s_seconds seconds\n\
              x_s_seconds_count 0\n# EOF\n";
    assert_eq!(
        to_text_format(om),
        "# HELP x_c_total Things.\n# TYPE x_c_total counter\nx_c_total 1\n\
         # HELP x_b_info Build.\n# TYPE x_b_info gauge\nx_b_info{v=\"1\"} 1\n\
         # HELP x_s_seconds Time.\n# TYPE x_s_seconds histogram\nx_s_seconds_count 0\n"
    );
}
