//! Changes to messages in the database (version 7): a change is a row of
//! `records` like a message, with its `kind` and `target`, and triggers
//! apply it to its target in the same transaction, so that reading the
//! target gives the message as it stands.

/// Version 7.
///
/// - `records.kind`, `records.target`: a change's kind (`edit`, `delete`,
///   `react`, `unreact`) and the id of the message it changes; `NULL` for
///   messages and files. Its `text` is an edit's text or a reaction's
///   emoji (empty for a deletion).
/// - `records.edited`, `records.deleted`: what happened to a message. A
///   deleted message's text is emptied, and so is the text of every edit
///   of it, which becomes a deletion: nothing it said is kept.
/// - `reactions`: who reacted to which message with which emoji, `seq`
///   being the reaction's id (they are read in that order). Emptied with
///   the message, by a deletion or by retention.
pub(super) const V7: &str = "
ALTER TABLE records ADD COLUMN kind TEXT;
ALTER TABLE records ADD COLUMN target INTEGER;
ALTER TABLE records ADD COLUMN edited INTEGER NOT NULL DEFAULT 0;
ALTER TABLE records ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;

CREATE TABLE reactions (
    room TEXT NOT NULL,
    target INTEGER NOT NULL,
    emoji TEXT NOT NULL,
    name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (room, target, emoji, name)
) WITHOUT ROWID;

CREATE TRIGGER records_edit AFTER INSERT ON records WHEN NEW.kind = 'edit' BEGIN
    UPDATE records SET text = NEW.text, edited = 1
     WHERE room = NEW.room AND id = NEW.target AND kind IS NULL AND deleted = 0;
END;

CREATE TRIGGER records_delete AFTER INSERT ON records WHEN NEW.kind = 'delete' BEGIN
    UPDATE records SET text = '', edited = 0, deleted = 1
     WHERE room = NEW.room AND id = NEW.target AND kind IS NULL AND text IS NOT NULL;
    UPDATE records SET kind = 'delete', text = ''
     WHERE room = NEW.room AND id > NEW.target AND id < NEW.id
       AND kind = 'edit' AND target = NEW.target;
    DELETE FROM reactions WHERE room = NEW.room AND target = NEW.target;
END;

CREATE TRIGGER records_react AFTER INSERT ON records WHEN NEW.kind = 'react' BEGIN
    INSERT OR IGNORE INTO reactions (room, target, emoji, name, seq)
    SELECT NEW.room, NEW.target, NEW.text, NEW.sender, NEW.id
     WHERE EXISTS (SELECT 1 FROM records WHERE room = NEW.room AND id = NEW.target
                   AND kind IS NULL AND deleted = 0);
END;

CREATE TRIGGER records_unreact AFTER INSERT ON records WHEN NEW.kind = 'unreact' BEGIN
    DELETE FROM reactions WHERE room = NEW.room AND target = NEW.target
       AND emoji = NEW.text AND name = NEW.sender;
END;

CREATE TRIGGER records_gone AFTER DELETE ON records WHEN OLD.kind IS NULL BEGIN
    DELETE FROM reactions WHERE room = OLD.room AND target = OLD.id;
END;
";
