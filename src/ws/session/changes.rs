//! A v1 client's edits, deletions and reactions: checked as a message's
//! text is (an edit's text meets the same limits), paid for from the
//! address's store rate like a message, and handed to the dispatcher,
//! which asks the history whether the client may make them.

use std::sync::Arc;

use super::{Flow, Session};
use crate::hub::dispatcher::Input;
use crate::hub::outlet::Outlet;
use crate::proto::protocol::changes::Change;
use crate::proto::protocol::{ErrorCode, FrameRefusal};

impl Session {
    pub(super) fn change(
        &mut self,
        own: &Arc<Outlet>,
        target: u64,
        change: Change,
        cid: Option<String>,
    ) -> Flow {
        if let Change::Edit(text) = &change {
            if text.is_empty() {
                let why = "an edit needs some text; delete the message instead";
                return self.refuse(own, FrameRefusal::new(ErrorCode::EmptyText, why));
            }
            if text.len() > self.config.max_text {
                let why = format!(
                    "text is {} bytes; the limit is {}",
                    text.len(),
                    self.config.max_text
                );
                return self.refuse(own, FrameRefusal::new(ErrorCode::TextTooLong, why));
            }
        }
        let cost = crate::limits::storerate::record_cost(change.text().len() as u64);
        if let Flow::Gone = self.pay(cost, Some(own)) {
            return Flow::Gone;
        }
        self.tell(Input::Change {
            id: self.id,
            target,
            change,
            cid,
        });
        Flow::Continue
    }
}
