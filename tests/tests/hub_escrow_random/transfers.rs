//! The shipment steps of the random schedule: a transfer dispatched by one outlet and
//! received by another, in any order relative to syncs.

use super::*;

impl Schedule {
    pub(super) async fn transfer_out(&mut self) -> Result<String> {
        let from = OUTLETS.choose(&mut self.rng).copied().expect("outlets");
        let others: Vec<&'static str> = OUTLETS.iter().copied().filter(|o| *o != from).collect();
        let to = others.choose(&mut self.rng).copied().expect("others");
        let sku = self.sku_for(from);
        let quantity = self.rng.random_range(1..=6);
        let transfer_id = self.fresh_id("tr");
        let request_id = self.fresh_id("tout");
        let before = self.released_at(from, sku).await?;
        let answer = self
            .cluster
            .mart(from)
            .await?
            .record_transfer_out(TransferOutRequest {
                request_id: request_id.clone(),
                transfer_id: transfer_id.clone(),
                sku: sku.into(),
                quantity,
                to_outlet: to.into(),
            })
            .await
            .map(|r| r.into_inner());
        let after = self.released_at(from, sku).await?;
        if !self.judge_sellable(
            from,
            "transfer out",
            sku,
            quantity,
            (before, after),
            &answer,
        )? {
            return Ok(format!("{from}: shipping {quantity} {sku} to {to} refused"));
        }
        self.outlet(from).record(&request_id, sku, -quantity);
        self.shipments.insert(
            transfer_id.clone(),
            Shipment {
                from,
                to,
                sku: sku.into(),
                quantity,
                received: false,
            },
        );
        self.tally.transfers += 1;
        Ok(format!(
            "{from}: ship {transfer_id} of {quantity} {sku} to {to}"
        ))
    }

    pub(super) async fn transfer_in(&mut self) -> Result<String> {
        let pending: Vec<String> = self
            .shipments
            .iter()
            .filter(|(_, s)| !s.received)
            .map(|(id, _)| id.clone())
            .collect();
        let Some(transfer_id) = pending.choose(&mut self.rng).cloned() else {
            return Ok("no shipment on the road".into());
        };
        self.receive_shipment(&transfer_id).await
    }

    pub(super) async fn receive_shipment(&mut self, transfer_id: &str) -> Result<String> {
        let s = self.shipments[transfer_id].clone();
        let request_id = self.fresh_id("tin");
        let ack = self
            .cluster
            .mart(s.to)
            .await?
            .record_transfer_in(TransferInRequest {
                request_id: request_id.clone(),
                transfer_id: transfer_id.into(),
                sku: s.sku.clone(),
                quantity: s.quantity,
                from_outlet: s.from.into(),
            })
            .await
            .with_context(|| format!("{}: receive {transfer_id}", s.to))?
            .into_inner();
        let outlet = self.outlet(s.to);
        outlet.record(&request_id, &s.sku, s.quantity);
        let on_hand = get(&outlet.stock, &s.sku);
        ensure!(
            !ack.duplicate && ack.quantity_on_hand == on_hand,
            "{}: receiving {transfer_id}: {ack:?}, the model has {on_hand}",
            s.to
        );
        self.shipments
            .get_mut(transfer_id)
            .expect("known shipment")
            .received = true;
        Ok(format!(
            "{}: receive {transfer_id} of {} {} from {}",
            s.to, s.quantity, s.sku, s.from
        ))
    }
}
