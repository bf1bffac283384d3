//! Proves /echo: every text and binary frame comes back unchanged, pings get
//! pongs, and a close gets a close reply after which the server closes the socket.

mod support;

use support::*;
use tungstenite::Message;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;

fn echo(server: &Server) -> Client {
    connect(&server.url("/echo"))
}

#[test]
fn text_comes_back_unchanged() {
    let server = Server::start(&[]);
    let mut ws = echo(&server);
    for t in ["hello", "héllo wörld ✓ 🎉", " spaces \t and\nnewlines "] {
        send_text(&mut ws, t);
        assert_eq!(expect_text(&mut ws), t);
    }
}

#[test]
fn empty_text_comes_back() {
    let server = Server::start(&[]);
    let mut ws = echo(&server);
    send_text(&mut ws, "");
    assert_eq!(expect_text(&mut ws), "");
}

#[test]
fn binary_comes_back_unchanged() {
    let server = Server::start(&[]);
    let mut ws = echo(&server);
    let data: Vec<u8> = (0..=255u8).chain([0, 0xff, 0xfe]).collect();
    send_binary(&mut ws, data.clone());
    assert_eq!(expect_binary(&mut ws), data);
}

#[test]
fn empty_binary_comes_back() {
    let server = Server::start(&[]);
    let mut ws = echo(&server);
    send_binary(&mut ws, Vec::new());
    assert_eq!(expect_binary(&mut ws), Vec::<u8>::new());
}

#[test]
fn one_mib_binary_comes_back_unchanged() {
    let server = Server::start(&[]);
    let mut ws = echo(&server);
    let data: Vec<u8> = (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    send_binary(&mut ws, data.clone());
    let back = expect_binary(&mut ws);
    assert_eq!(back.len(), data.len());
    assert!(back == data, "1 MiB frame came back altered");
}

#[test]
fn pipelined_frames_come_back_in_order() {
    let server = Server::start(&[]);
    let mut ws = echo(&server);
    for i in 0..200 {
        if i % 2 == 0 {
            ws.write(Message::text(format!("t{i}"))).unwrap();
        } else {
            ws.write(Message::binary(format!("b{i}").into_bytes()))
                .unwrap();
        }
    }
    ws.flush().unwrap();
    for i in 0..200 {
        if i % 2 == 0 {
            assert_eq!(expect_text(&mut ws), format!("t{i}"));
        } else {
            assert_eq!(expect_binary(&mut ws), format!("b{i}").into_bytes());
        }
    }
}

#[test]
fn ping_gets_pong_with_same_payload() {
    let server = Server::start(&[]);
    let mut ws = echo(&server);
    assert_pong(&mut ws, b"are you there?");
    assert_pong(&mut ws, b"");
}

#[test]
fn close_gets_reply_then_server_closes_socket() {
    let server = Server::start(&[]);
    let mut ws = echo(&server);
    send_text(&mut ws, "before close");
    assert_eq!(expect_text(&mut ws), "before close");
    ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    }))
    .unwrap();
    match ws.read() {
        Ok(Message::Close(frame)) => {
            if let Some(f) = frame {
                assert_eq!(u16::from(f.code), 1000, "close reply code");
            }
        }
        other => panic!("expected the server's close reply, got {other:?}"),
    }
    // The server must now close the TCP connection: the next read sees EOF.
    match ws.read() {
        Err(tungstenite::Error::ConnectionClosed) => {}
        other => panic!("expected the server to close the socket, got {other:?}"),
    }
}
