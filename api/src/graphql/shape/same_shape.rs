//! `SameResponseShape` (§5.3.2, the second half of `OverlappingFieldsCanBeMerged`): fields under
//! one response key that can never meet on one object type — in fragments on two object types,
//! `node(id:) { ... on TradeRecord { x: hsCode } ... on Batch { x: acceptedRows } }` — may be
//! different fields, but their values must still have one shape, so that a client can give the
//! key one type. async-graphql 7.2 does not check it; such a document ran and answered a string
//! under `x` for one object and a number for the other.

use async_graphql::parser::types::{BaseType, SelectionSet, Type};
use async_graphql::{Name, ServerError};

use super::Walk;
use crate::graphql::limits;

/// The first field seen under one response key: its type and selections, and where it is.
struct Seen<'a> {
    key: &'a Name,
    ty: &'a Type,
    sets: Vec<&'a SelectionSet>,
    pos: async_graphql::Pos,
}

impl<'a> Walk<'a> {
    /// Compares the fields each response key names on every object type `name` may be, and
    /// records the first key whose values would differ in shape in `conflict`.
    pub(super) fn same_shapes(&mut self, name: &'a str, sets: &[&'a SelectionSet], depth: usize) {
        let Some(seen) = self.seen(name, sets) else {
            return;
        };
        for (i, a) in seen.iter().enumerate() {
            for b in seen[i + 1..].iter().filter(|b| b.key == a.key) {
                if let Err(why) = self.same_shape(a.ty, &a.sets, b.ty, &b.sets, depth) {
                    let mut error = ServerError::new(
                        format!(
                            "Fields \"{}\" conflict because {why}. Use different aliases on the \
                             fields to fetch both if this was intentional.",
                            a.key
                        ),
                        Some(a.pos),
                    );
                    error.locations.push(b.pos);
                    self.conflict.get_or_insert(error);
                    return;
                }
            }
        }
    }

    /// Each response key's field on each object type `name` may be; one entry where several
    /// object types collect the same type and selections (a field outside any fragment).
    /// `None` where the collection found a conflict of its own or could not be read.
    fn seen(&mut self, name: &'a str, sets: &[&'a SelectionSet]) -> Option<Vec<Seen<'a>>> {
        let mut seen: Vec<Seen<'a>> = Vec::new();
        for object_type in self.types.possible(name) {
            let groups = self.collect(object_type, sets)?;
            for group in groups.iter() {
                // A field the served SDL does not have (`__typename`, introspection) is the
                // same wherever it is selected.
                let Some(ty) = group.ty else {
                    continue;
                };
                let same = |s: &Seen<'a>| {
                    s.key == group.key
                        && s.ty == ty
                        && s.sets.len() == group.sets.len()
                        && s.sets
                            .iter()
                            .zip(&group.sets)
                            .all(|(x, y)| std::ptr::eq(*x, *y))
                };
                if !seen.iter().any(same) {
                    seen.push(Seen {
                        key: group.key,
                        ty,
                        sets: group.sets.clone(),
                        pos: group.first.pos,
                    });
                }
            }
        }
        Some(seen)
    }

    /// `SameResponseShape(fieldA, fieldB)`: why values of type `a` selected by `sa` and of `b`
    /// by `sb` cannot share a key, if they cannot.
    fn same_shape(
        &mut self,
        a: &'a Type,
        sa: &[&'a SelectionSet],
        b: &'a Type,
        sb: &[&'a SelectionSet],
        depth: usize,
    ) -> Result<(), String> {
        let conflicting = || Err(format!("they return conflicting types \"{a}\" and \"{b}\""));
        if depth > limits::MAX_NESTING {
            return Ok(());
        }
        if a.nullable != b.nullable {
            return conflicting();
        }
        let (na, nb) = match (&a.base, &b.base) {
            (BaseType::List(ia), BaseType::List(ib)) => {
                return self.same_shape(ia, sa, ib, sb, depth + 1);
            }
            (BaseType::Named(na), BaseType::Named(nb)) => (na.as_str(), nb.as_str()),
            _ => return conflicting(),
        };
        let composite = |n: &str| !self.types.possible(n).is_empty();
        if !composite(na) || !composite(nb) {
            return if na == nb { Ok(()) } else { conflicting() };
        }
        // Two objects: every key the two selections share keeps one shape.
        let (Some(left), Some(right)) = (self.seen(na, sa), self.seen(nb, sb)) else {
            return Ok(());
        };
        for l in &left {
            for r in right.iter().filter(|r| r.key == l.key) {
                if let Err(why) = self.same_shape(l.ty, &l.sets, r.ty, &r.sets, depth + 1) {
                    return Err(format!("subfields \"{}\" conflict because {why}", l.key));
                }
            }
        }
        Ok(())
    }
}
