//! Replays the shared scenarios in `tests/vectors/private.json`, which the
//! web client's `private.js` replays too: a room log and the private
//! conversations of one member, side by side, as a client drives them.

use peerchat_e2e::Context;
use peerchat_history::private::{Conversations, unwrap};
use peerchat_history::{Config, Effect, History, Message, SendError};
use serde_json::{Value, json};

mod common;
use common::{checked, effect, keys, n, s, send_error, strings};

const VECTORS: &str = include_str!("../../../tests/vectors/private.json");

fn effects(list: &[Effect]) -> Value {
    json!(list.iter().map(effect).collect::<Vec<_>>())
}

/// Draft, sign, commit, or the error: as the web client does.
fn signed(
    identity: &peerchat_e2e::IdentityKey,
    private: &mut Conversations,
    peer: &str,
    draft: Result<peerchat_history::Draft, SendError>,
) -> Result<(Message, String), SendError> {
    let draft = draft?;
    let sig = peerchat_e2e::base64url::encode(&identity.sign(&draft.bytes));
    private.commit(peer, draft, &sig)
}

fn order<'a>(messages: impl Iterator<Item = &'a Message>) -> Value {
    json!(
        messages
            .map(|m| json!([m.author, m.seq]))
            .collect::<Vec<_>>()
    )
}

fn sent(got: Result<(Message, String), SendError>, want: &Value, at: &str) {
    match got {
        Ok((message, envelope)) => {
            let want_message: Message = serde_json::from_value(want["message"].clone()).expect(at);
            assert_eq!(message, want_message, "{at}");
            assert_eq!(envelope, s(want, "envelope"), "{at}");
        }
        Err(e) => {
            assert_eq!(send_error(&e), s(want, "error"), "{at}");
        }
    }
}

#[test]
fn scenarios() {
    let doc: Value = serde_json::from_str(VECTORS).unwrap();
    let scenarios = doc["scenarios"].as_array().unwrap();
    assert!(scenarios.len() >= 5);
    for scenario in scenarios {
        let name = s(scenario, "name");
        let me = s(scenario, "me");
        let keys = keys(scenario);
        let identity = &keys[&me];
        let own = identity.public_key();
        let context = Context::parse(&s(scenario, "context")).unwrap();
        let mut room =
            History::new(me.clone(), Config::default()).with_identity(context.clone(), &own);
        let mut private =
            Conversations::new(me.clone(), Config::default()).with_identity(context, &own);
        if let Some(limit) = scenario["config"]["limit"].as_u64() {
            private = private.with_limit(limit as usize);
        }
        for author in scenario["confirmed"].as_array().unwrap() {
            let author = author.as_str().unwrap();
            let key = keys[author].public_key();
            assert!(room.key_confirmed(author, &key).is_empty());
            assert!(private.key_confirmed(author, &key).is_empty());
        }
        for (i, step) in scenario["steps"].as_array().unwrap().iter().enumerate() {
            let at = format!("{name}, step {i}: {step}");
            let want = &step["want"];
            let peer = step["peer"].as_str().unwrap_or_default();
            match step["do"].as_str().unwrap() {
                "send" => {
                    let draft = private.draft(
                        peer,
                        &s(step, "id"),
                        &s(step, "nick"),
                        &s(step, "text"),
                        n(step, "ts"),
                    );
                    sent(signed(identity, &mut private, peer, draft), want, &at);
                }
                "send_file" => {
                    let draft = private.draft_file(
                        peer,
                        &s(step, "id"),
                        &s(step, "nick"),
                        serde_json::from_value(step["file"].clone()).expect(&at),
                        n(step, "ts"),
                    );
                    sent(signed(identity, &mut private, peer, draft), want, &at);
                }
                "room_send" => {
                    let recipients = strings(step, "recipients");
                    let (_, envelope) = room
                        .send(
                            identity,
                            &s(step, "id"),
                            &s(step, "nick"),
                            &s(step, "text"),
                            n(step, "ts"),
                            recipients,
                        )
                        .expect(&at);
                    assert_eq!(json!(envelope), *want, "{at}");
                }
                "receive" => {
                    let (from, nick, text, now) = (
                        s(step, "from"),
                        s(step, "nick"),
                        s(step, "text"),
                        n(step, "now"),
                    );
                    let got = match unwrap(&text) {
                        Some(body) => match private.handle(&from, &nick, &body, now) {
                            Ok(list) => json!({"private": checked(list, &mut |id, r| private
                                .verified(&from, id, r))}),
                            Err(e) => json!({"error": e.code().as_str()}),
                        },
                        None => match room.handle(&from, &nick, &text, now) {
                            Ok(list) => {
                                json!({"room": checked(list, &mut |id, r| room.verified(id, r))})
                            }
                            Err(e) => json!({"room": {"error": e.code().as_str()}}),
                        },
                    };
                    assert_eq!(got, *want, "{at}");
                }
                "link_opened" => {
                    let got = json!({"room": effects(&room.link_opened(peer)),
                                     "private": effects(&private.link_opened(peer))});
                    assert_eq!(got, *want, "{at}");
                }
                "order" => {
                    let got = match step["peer"].as_str() {
                        None => order(room.messages()),
                        Some(p) => order(private.get(p).expect(&at).messages()),
                    };
                    assert_eq!(got, *want, "{at}");
                }
                "delivery" => {
                    let got = private.get(peer).expect(&at).delivery(n(step, "seq"));
                    assert_eq!(json!(got), *want, "{at}");
                }
                "unread" => assert_eq!(json!(private.unread(peer)), *want, "{at}"),
                "mark_read" => private.mark_read(peer),
                "peers" => assert_eq!(json!(private.peers().collect::<Vec<_>>()), *want, "{at}"),
                "typed" => assert_eq!(json!(private.typed(peer, n(step, "now"))), *want, "{at}"),
                "save" => assert_eq!(json!(private.save(peer)), *want, "{at}"),
                "restore" => {
                    let saved = serde_json::from_value(step["saved"].clone()).expect(&at);
                    let got = private.restore(peer, saved, n(step, "now"));
                    assert_eq!(order(got.iter()), *want, "{at}");
                }
                other => panic!("unknown step {other}"),
            }
        }
    }
}
